"""The one Registry (mindsponge_mm/registry.py): names, "did you mean", signature checks, and that
every kind of component a YAML file names is registered in it."""
import numpy as np
import pytest

from mindsponge_mm.config import Field, validate
from mindsponge_mm.errors import ConfigError
from mindsponge_mm.registry import Registry


@pytest.fixture()
def things():
    reg = Registry("widget", noun="setting")

    @reg.register("spring")
    class Spring:
        def __init__(self, stiffness: float, length: float = 1.0, damping: float | None = None, label: str = "s"):
            self.stiffness, self.length, self.damping, self.label = stiffness, length, damping, label

    @reg.register("pendulum")
    def pendulum(mass, length=2.0):
        return ("pendulum", mass, length)

    @reg.register("anything")
    def anything(size=1, **extra):
        return size, extra

    return reg, Spring


def test_lookup_and_names(things):
    reg, spring = things
    assert reg.names() == ["anything", "pendulum", "spring"] == list(reg)
    assert "spring" in reg and "sprung" not in reg and 3 not in reg
    assert reg["spring"] is spring and len(reg) == 3
    assert list(reg.parameters("spring")) == ["stiffness", "length", "damping", "label"]
    assert list(reg.parameters("anything")) == ["size"]


def test_unknown_name_suggests_the_closest(things):
    reg, _ = things
    with pytest.raises(ConfigError, match=r"^job.yaml: part: unknown widget 'sprign'; did you mean 'spring'\?$"):
        reg.validate("sprign", {}, where="job.yaml: part")
    with pytest.raises(ConfigError, match="unknown widget 'xyz'; choose one of anything, pendulum, spring"):
        reg.build("xyz")


def test_unknown_key_suggests_the_closest(things):
    reg, _ = things
    with pytest.raises(ConfigError, match=r"^job.yaml: part: widget 'spring' has no setting 'stifness'; "
                                          r"did you mean 'stiffness'\?$"):
        reg.validate("spring", {"stifness": 2.0}, where="job.yaml: part")
    with pytest.raises(ConfigError, match="widget 'pendulum' has no setting 'zzz'; it takes mass, length"):
        reg.build("pendulum", mass=1.0, zzz=3)
    # **kwargs in the signature takes any key
    assert reg.build("anything", size=2, colour="red") == (2, {"colour": "red"})


def test_missing_key_is_named(things):
    reg, _ = things
    with pytest.raises(ConfigError, match="widget 'spring' needs stiffness; add it"):
        reg.validate("spring", {"length": 2.0}, where="job.yaml: part")
    with pytest.raises(ConfigError, match="widget 'pendulum' needs mass"):
        reg.build("pendulum")
    # an argument the caller adds itself counts as present
    assert reg.validate("spring", {}, given=("stiffness",)) == {}


def test_types_from_annotations_and_defaults(things):
    reg, _ = things
    checked = reg.validate("spring", {"stiffness": 3, "damping": None, "label": "a"}, where="f.yaml: part")
    assert checked == {"stiffness": 3.0, "damping": None, "label": "a"} and type(checked["stiffness"]) is float
    with pytest.raises(ConfigError, match=r"^f.yaml: part.length must be a number, got 'long'$"):
        reg.validate("spring", {"stiffness": 1.0, "length": "long"}, where="f.yaml: part")
    with pytest.raises(ConfigError, match="part.label must be a string, got 3"):
        reg.validate("spring", {"stiffness": 1.0, "label": 3}, where="f.yaml: part")
    with pytest.raises(ConfigError, match="stiffness must be a number, got True"):
        reg.validate("spring", {"stiffness": True})
    # build checks names and keys, not types (Python callers pass arrays, tuples, numpy scalars)
    assert reg.build("spring", stiffness=np.float32(2.0)).stiffness == 2.0


def test_build_constructs(things):
    reg, spring = things
    obj = reg.build("spring", stiffness=2.0, length=3.0)
    assert isinstance(obj, spring) and (obj.stiffness, obj.length, obj.label) == (2.0, 3.0, "s")
    assert reg.build("pendulum", mass=1.5) == ("pendulum", 1.5, 2.0)


def test_a_config_field_with_a_registry_as_choices(things):
    reg, _ = things
    schema = {"part": {"kind": Field(str, "spring", choices=reg)}}
    assert validate({"part": {"kind": "pendulum"}}, schema, "job.yaml") == {"part": {"kind": "pendulum"}}
    with pytest.raises(ConfigError, match=r"^job.yaml: part.kind: unknown widget 'pendulm'; did you mean 'pendulum'\?$"):
        validate({"part": {"kind": "pendulm"}}, schema, "job.yaml")


# ---------------------------------------------------------------------- the package's registries
def test_models_are_registered_and_the_model_section_uses_the_registry():
    from mindsponge_mm.job_schema import validate_model_section
    from mindsponge_mm.models import build, register
    from mindsponge_mm.models.registry import MODELS
    from mindsponge_mm.models.schnet import SchNet

    assert isinstance(MODELS, Registry) and {"schnet", "painn", "mace"} <= set(MODELS.names())
    assert register == MODELS.register and build == MODELS.build
    assert isinstance(build("schnet", elements=["H", "O"], n_features=8, n_interactions=1, n_rbf=4), SchNet)
    with pytest.raises(ConfigError, match="job.yaml: model: model 'painn' has no hyperparameter 'n_featurs'; "
                                          "did you mean 'n_features'"):
        validate_model_section({"name": "painn", "n_featurs": 8}, "job.yaml", "model.")
    assert validate_model_section({"name": "painn", "cutoff": 4}, "job.yaml", "model.") == {"name": "painn",
                                                                                           "cutoff": 4.0}


def test_potentials_are_registered():
    import mindsponge_mm.models  # noqa: F401  (registers type: checkpoint)
    from mindsponge_mm.potentials import POTENTIALS, LennardJones, build, from_config

    assert isinstance(POTENTIALS, Registry) and {"lennard_jones", "sum", "checkpoint"} <= set(POTENTIALS.names())
    lj = from_config({"type": "lennard_jones", "epsilon": {"Ar": 0.01}, "sigma": {"Ar": 3.4}, "cutoff": 8})
    assert isinstance(lj, LennardJones) and lj.cutoff == 8.0
    with pytest.raises(ConfigError, match="unknown potential type 'lenard_jones'; did you mean 'lennard_jones'"):
        build("lenard_jones")
    with pytest.raises(ConfigError, match="lennard_jones' has no option 'sigmaa'; did you mean 'sigma'"):
        from_config({"type": "lennard_jones", "epsilon": 0.01, "sigmaa": 3.4, "cutoff": 8.0})


def test_integrators_are_registered_and_name_the_md_keys():
    from mindsponge_mm.md import INTEGRATORS, build_integrator
    from mindsponge_mm.md.integrators import Langevin
    from mindsponge_mm.md.job import MD_SCHEMA, integrator_config

    assert isinstance(INTEGRATORS, Registry)
    assert {"verlet", "langevin", "bussi", "berendsen", "nose_hoover_chain", "stochastic_cell_rescaling",
            "berendsen_npt"} <= set(INTEGRATORS.names())
    integrator = build_integrator("langevin", dt=1.0, tau=50.0)
    assert isinstance(integrator, Langevin) and integrator.config() == {"name": "langevin", "dt": 1.0,
                                                                       "temperature": 300.0, "tau": 50.0}
    for name in INTEGRATORS:  # the YAML key and the constructor argument are the same word
        assert set(INTEGRATORS.parameters(name)) <= set(MD_SCHEMA), name
    md = {k: f.default for k, f in MD_SCHEMA.items() if not f.required}
    assert integrator_config({**md, "integrator": "nose_hoover_chain"}) == {
        "name": "nose_hoover_chain", "dt": 0.5, "temperature": 300.0, "tau": 100.0, "chain_length": 3}
    assert integrator_config({**md, "integrator": "verlet"}) == {"name": "verlet", "dt": 0.5}
    with pytest.raises(ConfigError, match=r"job.yaml: md.integrator: unknown integrator 'langevn'; did you mean 'langevin'"):
        validate({"md": {"system": "x.xyz", "potential": "m.safetensors", "integrator": "langevn"}},
                 {"md": MD_SCHEMA}, "job.yaml")


def test_md_optimizers_are_registered():
    from mindsponge_mm.md.optimize import OPTIMIZERS, optimize

    assert isinstance(OPTIMIZERS, Registry) and OPTIMIZERS.names() == ["fire", "lbfgs"]
    with pytest.raises(ConfigError, match="unknown optimizer 'lbgfs'; did you mean 'lbfgs'"):
        optimize([], None, method="lbgfs")
    # options are checked against the optimiser's signature before any work
    with pytest.raises(ConfigError, match="optimizer 'fire' has no option 'dtmx'; did you mean 'dtmax'"):
        optimize([], None, method="fire", dtmx=2.0)
    with pytest.raises(ConfigError, match="optimizer 'lbfgs' has no option 'dtmax'"):
        optimize([], None, method="lbfgs", dtmax=2.0)
    assert optimize([], None, method="lbfgs", memory=10)[0] == []


def test_training_optimizers_schedulers_and_losses_are_registered():
    import mindspore as ms
    from mindspore import nn

    from mindsponge_mm.job_schema import SCHEDULER_SCHEMA, TRAINING_SCHEMA
    from mindsponge_mm.train.loss import LOSSES, PotentialLoss
    from mindsponge_mm.train.optimizers import OPTIMIZERS
    from mindsponge_mm.train.schedules import SCHEDULERS, LRSchedule

    assert OPTIMIZERS.names() == ["adam", "adamw"]
    assert SCHEDULERS.names() == ["constant", "cosine", "plateau"]
    assert LOSSES.names() == ["huber", "mse"]
    weight = ms.Parameter(ms.Tensor(np.zeros(3, np.float32)), name="w")
    assert type(OPTIMIZERS.build("adam", params=[weight], lr=1e-3)) is nn.Adam
    assert isinstance(OPTIMIZERS.build("adamw", params=[weight], lr=1e-3, weight_decay=0.01), nn.AdamWeightDecay)
    with pytest.raises(ConfigError, match="unknown optimizer 'adamm'; did you mean 'adam'"):
        OPTIMIZERS.build("adamm", params=[weight], lr=1e-3)
    schedule = SCHEDULERS.build("cosine", lr=1e-3, epochs=10, min_lr=0.0)
    assert isinstance(schedule, LRSchedule) and schedule.kind == "cosine"
    assert schedule.value(10, 0, 1) == pytest.approx(0.0, abs=1e-12)
    # every scheduler key of the YAML is an argument of every scheduler (the trainer passes them all)
    for name in SCHEDULERS:
        assert set(SCHEDULER_SCHEMA) - {"type"} <= set(SCHEDULERS.parameters(name)), name
    with pytest.raises(ConfigError, match="training.scheduler.type: unknown scheduler type 'cosin'; did you mean 'cosine'"):
        LRSchedule("cosin", 1e-3, 10)
    for name in ("mse", "huber"):
        assert LOSSES[name].func is PotentialLoss and LOSSES[name].keywords == {"kind": name}
    with pytest.raises(ConfigError, match="unknown loss type 'hubr'; did you mean 'huber'"):
        PotentialLoss(None, kind="hubr")
    # the job schema's choices are the registries
    assert TRAINING_SCHEMA["optimizer"].choices is OPTIMIZERS
    assert SCHEDULER_SCHEMA["type"].choices is SCHEDULERS
    assert TRAINING_SCHEMA["loss"]["type"].choices is LOSSES
