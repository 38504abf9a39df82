#!/usr/bin/env bash
# A separate benchmark environment with SchNetPack 2.1.1 (torch 2.13 CPU) beside mindsponge_mm, so that
# benchmarks/models.py, training.py and md.py run the peers side by side in the same process. Never a
# dependency of the package or of CI. Recipe from ../shared/PEERS.md; about 3 minutes with a warm pip cache.
#   bash benchmarks/peers_env.sh [VENV_DIR] [PEER ...]   (default: ../benchvenv schnetpack)
# PEER: schnetpack, mace (mace-torch 0.3.16 with e3nn 0.4.4, for benchmarks/mace.py), e.g.
#   bash benchmarks/peers_env.sh /work/bench-venv schnetpack mace
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-../benchvenv}"
shift || true
peers=" ${*:-schnetpack} "
for peer in $peers; do
    case "$peer" in schnetpack|mace) ;; *) echo "unknown peer $peer (schnetpack, mace)" >&2; exit 2 ;; esac
done
python3.11 -m venv "$venv"
. "$venv/bin/activate"
constraints="$(mktemp)"
echo "torch==2.13.0" > "$constraints"  # the CPU build; plain "torch" pulls gigabytes of CUDA packages
pip install -q -c "$constraints" torch==2.13.0
if [[ "$peers" == *" schnetpack "* ]]; then
    pip install -q --no-deps schnetpack==2.1.1  # 2.1.1 pins sympy<=1.12, which conflicts with torch 2.13
    pip install -q -c "$constraints" ase h5py pyyaml hydra-core pytorch-lightning "torchmetrics>=1.4" hydra-colorlog \
        rich fasteners dirsync torch-ema tqdm tensorboardX
fi
if [[ "$peers" == *" mace "* ]]; then
    pip install -q -c "$constraints" mace-torch==0.3.16 "torchmetrics>=1.4"  # pins e3nn 0.4.4
fi
pip install -q -e .
pip install -q "numpy<2" "matscipy<1.1"  # MindSpore 2.10 needs numpy<2; matscipy >= 1.1 is built for numpy 2
modules="mindsponge_mm"
if [[ "$peers" == *" schnetpack "* ]]; then
    # torch 2.13 removed torch.utils.data.dataloader.T_co, which schnetpack 2.1.1 imports
    loader="$(python -c 'import importlib.util as u; print(u.find_spec("schnetpack").submodule_search_locations[0])')/data/loader.py"
    sed -i 's/^from torch.utils.data.dataloader import _collate_fn_t, T_co$/from torch.utils.data.dataloader import _collate_fn_t\nfrom typing import TypeVar\nT_co = TypeVar("T_co", covariant=True)/' "$loader"
    modules="schnetpack, $modules"
fi
if [[ "$peers" == *" mace "* ]]; then
    pip install -q -c "$constraints" "pandas<2.3"  # a pandas built for numpy 2 breaks "import mace"
    modules="mace.modules, $modules"
fi
lock=(); if command -v flock >/dev/null; then lock=(flock /tmp/mindspore.lock); fi  # one MindSpore process at a time
GLOG_v=3 TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "${lock[@]}" python -c "import $modules; print('benchmark environment ready:', '$venv', '($peers)')"
