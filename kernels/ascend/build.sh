#!/bin/bash
# Build the NeighborList custom operator package (build_out/custom_opp_<os>_<arch>.run) with the
# CANN toolkit installed on this machine. NOT RUN in the repository's CI: it needs CANN.
#
# What it does:
#   1. finds CANN (ASCEND_HOME_PATH, or the default install paths) and sources its set_env.sh;
#   2. generates a fresh msopgen project for NeighborList from neighbor_list.json into
#      build_msopgen/ (so the cmake/ helper scripts match the installed CANN version);
#   3. copies our sources over the generated stubs: op_host/neighbor_list.cpp,
#      op_host/neighbor_list_tiling.h, op_kernel/neighbor_list.cpp;
#   4. writes the values of our CMakePresets.json (vendor name, compute units, packaging switches)
#      and the CANN path into the generated CMakePresets.json;
#   5. runs the generated project's build.sh and copies custom_opp_*.run to build_out/.
#
# Environment:
#   ASCEND_HOME_PATH  CANN toolkit root (default: first of /usr/local/Ascend/ascend-toolkit/latest,
#                     $HOME/Ascend/ascend-toolkit/latest, /usr/local/Ascend/cann)
#   SOC_VERSION       soc for msopgen's -c ai_core-<soc> (default: Ascend910B1; only used to
#                     generate the project, the compute units built come from CMakePresets.json)
#   MSMM_BUILD_DIR    where to generate the project (default: <this dir>/build_msopgen)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="${MSMM_BUILD_DIR:-$HERE/build_msopgen}"
SOC="${SOC_VERSION:-Ascend910B1}"

# 1. CANN
if [ -z "${ASCEND_HOME_PATH:-}" ]; then
    for candidate in /usr/local/Ascend/ascend-toolkit/latest "$HOME/Ascend/ascend-toolkit/latest" /usr/local/Ascend/cann; do
        if [ -d "$candidate" ]; then
            ASCEND_HOME_PATH="$candidate"
            break
        fi
    done
fi
if [ -z "${ASCEND_HOME_PATH:-}" ] || [ ! -d "$ASCEND_HOME_PATH" ]; then
    echo "build.sh: no CANN toolkit found; set ASCEND_HOME_PATH (e.g. /usr/local/Ascend/ascend-toolkit/latest)" >&2
    exit 1
fi
for env_script in "$ASCEND_HOME_PATH/../set_env.sh" "$ASCEND_HOME_PATH/set_env.sh" "$ASCEND_HOME_PATH/bin/setenv.bash"; do
    if [ -f "$env_script" ]; then
        # shellcheck disable=SC1090
        set +u
        source "$env_script"
        set -u
        break
    fi
done
export ASCEND_HOME_PATH
MSOPGEN="$(command -v msopgen || true)"
if [ -z "$MSOPGEN" ] && [ -x "$ASCEND_HOME_PATH/python/site-packages/bin/msopgen" ]; then
    MSOPGEN="$ASCEND_HOME_PATH/python/site-packages/bin/msopgen"
fi
if [ -z "$MSOPGEN" ]; then
    echo "build.sh: msopgen not found (it ships with the CANN toolkit under python/site-packages/bin)" >&2
    exit 1
fi
echo "build.sh: CANN at $ASCEND_HOME_PATH, msopgen $MSOPGEN, soc $SOC"

# 2. fresh msopgen project
rm -rf "$WORK"
"$MSOPGEN" gen -i "$HERE/neighbor_list.json" -c "ai_core-$SOC" -lan cpp -out "$WORK"
for f in op_host/neighbor_list.cpp op_host/neighbor_list_tiling.h op_kernel/neighbor_list.cpp CMakePresets.json build.sh; do
    if [ ! -f "$WORK/$f" ]; then
        echo "build.sh: msopgen did not generate $f; the project layout of this CANN version differs" >&2
        exit 1
    fi
done

# 3. our sources
cp "$HERE/op_host/neighbor_list.cpp" "$HERE/op_host/neighbor_list_tiling.h" "$WORK/op_host/"
cp "$HERE/op_kernel/neighbor_list.cpp" "$WORK/op_kernel/"

# 4. preset values
python3 - "$HERE/CMakePresets.json" "$WORK/CMakePresets.json" "$ASCEND_HOME_PATH" <<'PY'
import json, sys
ours_path, theirs_path, cann = sys.argv[1:4]
ours = json.load(open(ours_path))["configurePresets"][0]["cacheVariables"]
theirs_doc = json.load(open(theirs_path))
preset = next(p for p in theirs_doc["configurePresets"] if p.get("name") == "default")
variables = preset.setdefault("cacheVariables", {})
for key, spec in ours.items():
    value = cann if key == "ASCEND_CANN_PACKAGE_PATH" else spec["value"]
    if isinstance(variables.get(key), dict):
        variables[key]["value"] = value
    else:
        variables[key] = {"type": spec["type"], "value": value}
json.dump(theirs_doc, open(theirs_path, "w"), indent=4)
print("build.sh: presets", {k: variables[k]["value"] for k in ours})
PY

# 5. build with the generated project's own script
(cd "$WORK" && bash build.sh)
mkdir -p "$HERE/build_out"
shopt -s nullglob
packages=("$WORK"/build_out/custom_opp_*.run)
if [ ${#packages[@]} -eq 0 ]; then
    echo "build.sh: the build finished without a custom_opp_*.run in $WORK/build_out" >&2
    exit 1
fi
cp "${packages[@]}" "$HERE/build_out/"
echo "build.sh: built ${packages[*]##*/} -> $HERE/build_out/"
echo "install:  $HERE/build_out/${packages[0]##*/}                      # into \$ASCEND_OPP_PATH/vendors/mindsponge_mm"
echo "      or: $HERE/build_out/${packages[0]##*/} --install-path=DIR   # then: source DIR/vendors/mindsponge_mm/bin/set_env.bash"
