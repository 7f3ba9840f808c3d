"""Search types, conditional keys (`when`, model families), repeats: what a space plans, counts and costs, and the
one-line errors for every new key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweeper.errors import SweeperError
from sweeper.spec.cost import cost
from sweeper.spec.grow import refused
from sweeper.spec.loader import load_text
from sweeper.spec.schema import SweepSpec
from sweeper.spec.space import Space
from sweeper.store.state import fingerprint, trial_changes
from tests.conftest import REPO


def space(text: str, name: str = "space") -> Space:
    return load_text(text, Path(f"{name}.yaml"))


def test_a_conditional_grid_axis_multiplies_only_where_it_applies() -> None:
    s = space("parameters: {model: {grid: [mlp, cnn]}, filters: {grid: [8, 32]}, hidden: {grid: [[8], [16]]}}\n")
    assert s.grid_points() == [{"model": "mlp", "hidden": [8]}, {"model": "mlp", "hidden": [16]},
                               {"model": "cnn", "filters": 8}, {"model": "cnn", "filters": 32}]
    s = space("parameters: {model: {grid: [mlp, cnn]}, filters: {grid: [8, 32]}}\n")
    assert s.num_trials == 1 + 2  # not 2 x 2
    s = space("parameters: {optimizer: {grid: [sgd, adam]}, momentum: {grid: [0.0, 0.5, 0.9], when: {optimizer: sgd}}}"
              "\nnum_samples: 2\n")
    assert s.num_trials == (3 + 1) * 2 and len(cost(s).budgets) == 8


def test_when_on_variants_and_on_another_axis() -> None:
    s = space("""
variants: [{name: a, model: mlp, hidden: [8]}, {name: b, model: mlp, hidden: [16]}]
parameters:
  momentum: {grid: [0.0, 0.9]}
  nesterov: {grid: [false, true], when: {momentum: 0.9}}
  dropout: {grid: [0.0, 0.2], when: {variant: b}}
""")
    # a: momentum 0 | 0.9 x nesterov 2 = 3; b: the same x dropout 2 = 6
    assert s.num_trials == 9
    p = s.trial_params({"variant": "a", "momentum": 0.0, "nesterov": True, "dropout": 0.2})
    assert (p.nesterov, p.dropout) == (False, 0.0)
    assert p.recorded()["nesterov"] is None and p.recorded()["dropout"] is None and p.recorded()["momentum"] == 0.0


def test_inactive_keys_take_their_default_and_record_null() -> None:
    s = space("search: {type: tpe}\nparameters: {optimizer: {choice: [sgd, adam]}, "
              "momentum: {choice: [0.0, 0.9], when: {optimizer: sgd}}}\n")
    adam = s.trial_params({"optimizer": "adam", "momentum": 0.9})
    sgd = s.trial_params({"optimizer": "sgd", "momentum": 0.9})
    assert adam.momentum == 0.0 and adam.recorded()["momentum"] is None
    assert sgd.momentum == 0.9 and sgd.recorded()["momentum"] == 0.9
    mlp = space("parameters: {model: mlp, hidden: [4]}\n").trial_params({})
    assert mlp.recorded()["filters"] is None and mlp.recorded()["hidden"] == [4]  # a model family's keys


def test_config_id_is_shared_by_replicates_only() -> None:
    s = space("repeats: 3\nparameters: {lr: {grid: [0.1, 0.2]}}\n")
    trials = s.grid_trials()
    assert [t["seed"] for t in trials] == [0, 1, 2, 0, 1, 2] and s.num_trials == 6
    ids = [s.trial_params(t).config_id() for t in trials]
    assert len(set(ids[:3])) == 1 and len(set(ids[3:])) == 1 and ids[0] != ids[3]
    assert space("repeats: 2\nparameters: {seed: 5}\n").seeds() == [5, 6]


def test_a_variant_may_have_its_own_repeats() -> None:
    s = space("repeats: 2\nparameters: {seed: 3}\nvariants: [{name: cheap, repeats: 4}, {name: usual}, "
              "{name: dear, repeats: 1}]\n")
    trials = s.grid_trials()
    assert [(t["variant"], t.get("seed")) for t in trials] == [
        ("cheap", 3), ("cheap", 4), ("cheap", 5), ("cheap", 6), ("usual", 3), ("usual", 4), ("dear", None)]
    assert s.num_trials == 7 and s.planned_per_variant() == {"cheap": 4, "usual": 2, "dear": 1}
    assert len({s.trial_params(t).config_id() for t in trials[:4]}) == 1  # replicates share a config_id
    assert "repeats" not in s.variants["cheap"] and s.trial_params(trials[0]).seed == 3
    assert len(cost(s).budgets) == 7


@pytest.mark.parametrize(("text", "trials"), [
    ("num_samples: 3\nparameters: {lr: {grid: [0.1, 0.2]}, dropout: {uniform: [0.0, 0.5]}}\n", 6),
    ("search: {type: random}\nnum_samples: 7\nparameters: {lr: {choice: [0.1, 0.2]}}\n", 7),
    ("search: {type: tpe}\nnum_samples: 5\nrepeats: 2\nvariants: [{name: a}, {name: b}, {name: c}]\n", 10),
])
def test_num_trials_and_the_cost_model_follow_the_search_type(text: str, trials: int) -> None:
    s = space("epochs: 9\nscheduler: {type: asha, grace_period: 1, reduction_factor: 3}\n" + text)
    c = cost(s)
    assert s.num_trials == trials and len(c.budgets) == trials and c.full == 9 * trials
    assert c.expected < c.full


def test_random_and_tpe_plan_one_point_per_variant_and_draw_the_rest() -> None:
    s = space("search: {type: tpe}\nvariants: [{name: a}, {name: b, model: mlp, hidden: [8]}]\n"
              "parameters: {model: cnn, filters: {choice: [4, 8]}}\n")
    assert s.grid_points() == [{"variant": "a"}, {"variant": "b"}] and s.grid_axes == []


def test_a_fingerprint_without_the_new_keys_reads_them_as_defaults() -> None:
    new = fingerprint(space("epochs: 2\nparameters: {model: logreg}\n"))
    old = {k: v for k, v in new.items() if k not in ("search", "repeats")}  # as sweeper wrote it before them
    assert trial_changes(old, new) == []
    tpe = fingerprint(space("epochs: 2\nsearch: {type: tpe}\nparameters: {model: logreg}\n"))
    assert trial_changes(old, tpe) == ["search.type"]
    assert set(json.loads(SweepSpec().model_dump_json())) >= {"search", "repeats"}


def test_a_fingerprint_from_before_your_own_models_and_data_equals_todays() -> None:
    new = fingerprint(space("epochs: 2\ndata: {train_subset: 100}\nparameters: {model: cnn}\n"))
    old = {k: v for k, v in new.items() if k != "models"} | {
        "data": {k: v for k, v in new["data"].items() if k not in ("source", "args")}}  # as 0.1 wrote it
    assert trial_changes(old, new) == []
    sourced = fingerprint(space("epochs: 2\ndata: {train_subset: 100, source: p.d:load}\nparameters: {model: cnn}\n"))
    assert trial_changes(old, sourced) == ["data.source"]


def test_shipped_tpe_siblings_load() -> None:
    for name, family in (("cnn_tpe", "cnn"), ("mlp_tpe", "mlp")):
        s = load_text((REPO / "search_spaces" / f"{name}.yaml").read_text(), Path(f"{name}.yaml"))
        grid = load_text((REPO / "search_spaces" / f"{family}.yaml").read_text(), Path(f"{family}.yaml"))
        assert s.search == "tpe" and s.num_trials == 32 and s.num_trials <= grid.num_trials
        assert set(s.variants) == set(grid.variants)


def test_what_extend_may_change() -> None:
    old = space("epochs: 3\nnum_samples: 2\nvariants: [{name: a}]\n"
                "parameters: {model: mlp, optimizer: sgd, lr: {grid: [0.1, 0.2]}}\n")
    grown = space("epochs: 3\nnum_samples: 3\nrepeats: 2\nvariants: [{name: a}, {name: b, hidden: [4]}]\n"
                  "parameters: {model: mlp, optimizer: {grid: [sgd, adam]}, lr: {grid: [0.1, 0.2, 0.3]}}\n"
                  "resources: {cpu: 2}\n")
    assert refused(old, grown) == []
    changed = space("epochs: 4\nnum_samples: 1\nvariants: [{name: a, hidden: [8]}]\n"
                    "parameters: {model: cnn, optimizer: sgd, lr: {grid: [0.1]}}\nscheduler: {type: fifo}\n")
    assert refused(old, changed) == ["epochs", "scheduler", "num_samples", "parameters.model", "parameters.lr.grid",
                                     "variants.a"]


BAD = [
    ("search: {type: bayes}\n", "key 'search.type': Input should be 'grid', 'random' or 'tpe'"),
    ("search: {typ: tpe}\n", "key 'search.typ': unknown key (did you mean 'type'?)"),
    ("search: {startup_trials: 3}\n", "startup_trials is for search type tpe only"),
    ("repeats: 0\n", "key 'repeats': Input should be greater than 0"),
    ("repeats: 2\nparameters: {seed: {grid: [0, 1]}}\n", "key 'repeats': repeats 2 trains every configuration with "
     "seeds 0..1, but parameters.seed sets the seed too"),
    ("variants: [{name: a, repeats: 0}]\n", "key 'variants[0].repeats': seeds for this variant, a whole number >= 1,"
     " but got 0"),
    ("variants: [{name: a, repeats: true}]\n", "key 'variants[0].repeats': seeds for this variant"),
    ("search: {type: tpe}\nvariants: [{name: a}, {name: b, repeats: 2}]\n", "key 'variants[1].repeats': a "
     "variant's own repeats need search type grid (search type 'tpe' draws the variant); use the top-level repeats"),
    ("variants: [{name: a}, {name: b, seed: 1, repeats: 2}]\n", "key 'variants[1].repeats': repeats 2 trains 'b' "
     "with seeds 0..1, but variant 'b' sets the seed too"),
    ("search: {type: tpe}\nparameters: {lr: {grid: [0.1, 0.2]}}\n",
     "key 'parameters.lr.grid': search type 'tpe' draws every axis, so a grid is never exhausted; use choice: "
     "[0.1, 0.2]"),
    ("search: {type: random}\nparameters: {lr: {grid: [0.1]}}\n", "search type 'random' draws every axis"),
    ("parameters: {momentum: {when: {optimizer: sgd}}}\n", "key 'parameters.momentum': `when` needs a search domain"),
    ("parameters: {momentum: {choice: [0.9], when: {optimiser: sgd}}}\n",
     "key 'parameters.momentum.when.optimiser': unknown key (did you mean 'optimizer'?)"),
    ("parameters: {momentum: {choice: [0.9], when: {optimizer: rmsprop}}}\n",
     "key 'parameters.momentum.when.optimizer': 'optimizer' never takes 'rmsprop' in this space (it takes 'sgd')"),
    ("parameters: {lr: {uniform: [0.1, 0.2]}, momentum: {choice: [0.9], when: {lr: 0.5}}}\n",
     "'lr' never takes 0.5 in this space (it takes uniform(0.1, 0.2))"),
    ("parameters: {momentum: {choice: [0.0, 0.9], when: {lr: 0.1}}, lr: {choice: [0.1], when: {momentum: 0.9}}}\n",
     "key 'parameters.momentum.when': conditions form a cycle: momentum -> lr -> momentum"),
    ("parameters: {momentum: {choice: [0.9], when: {momentum: 0.9}}}\n", "a key cannot depend on itself"),
    ("parameters: {model: {grid: [mlp, cnn], when: {optimizer: sgd}}}\n", "the model family cannot be conditional"),
    ("parameters: {momentum: {choice: [0.9], when: sgd}}\n", "key 'parameters.momentum.when': a mapping of key"),
    ("parameters: {momentum: {choice: [0.9], when: {optimizer: []}}}\n", "must name at least one value"),
    ("parameters: {momentum: {choice: [0.9], when: {variant: a}}}\n", "'variant' never takes 'a' in this space"),
    ("parameters: {optimizer: {choice: [sgd, adam]}, momentum: {grid: [0.0, 0.9], when: {optimizer: sgd}}}\n",
     "a grid axis may only depend on literals, variants and grid axes, but 'optimizer' is drawn at random"),
    ("parameters: {model: mlp, hidden: {grid: [[8]]}, dropout: {grid: [0.1], when: {hidden: [8]}}}\n",
     "'hidden' never takes 8 in this space"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_search_keys_are_one_line_naming_file_and_key(text: str, message: str) -> None:
    with pytest.raises(SweeperError) as exc:
        space(text)
    line = str(exc.value)
    assert "\n" not in line and line.startswith("space.yaml: ")
    assert message in line, line
