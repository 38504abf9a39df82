"""runtime.configure: host-blocking graph runs on the CPU unless the user chose otherwise."""
import os
import subprocess
import sys

from mindsponge_mm import runtime


def test_configure_sets_the_default_and_respects_the_user(monkeypatch):
    monkeypatch.setattr(runtime, "accelerator_present", lambda: False)
    env = {}
    assert runtime.configure(env) and env[runtime.HOST_BLOCKING] == "1"
    env = {runtime.HOST_BLOCKING: "0"}  # the user's choice wins
    assert not runtime.configure(env) and env[runtime.HOST_BLOCKING] == "0"
    monkeypatch.setattr(runtime, "accelerator_present", lambda: True)
    env = {}
    assert not runtime.configure(env) and runtime.HOST_BLOCKING not in env  # Ascend/GPU: MindSpore's default


def test_importing_the_package_configures_the_runtime_before_any_graph():
    env = {k: v for k, v in os.environ.items() if k != runtime.HOST_BLOCKING}
    code = "import os, mindsponge_mm; print(os.environ.get('MS_DEV_HOST_BLOCKING_RUN'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("None" if runtime.accelerator_present() else "1")
