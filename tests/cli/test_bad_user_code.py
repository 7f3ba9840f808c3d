"""The bad-input corpus for your own models and data: real user modules written to a temporary folder, refused
through the real CLI before anything starts (exit 2, one line naming the user's file, key and rule, nothing written).

Each case's package has a name of its own (`pkg_<case>`): the CLI runs in this process, where an imported module
stays imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from tests.cli.test_bad_inputs import tree

runner = CliRunner()

GOOD_NET = """\
from typing import Annotated, Literal
from pydantic import Field
from torch import nn

def build(width: Annotated[int, Field(ge=1, le=64)] = 4, act: Literal["relu", "gelu"] = "relu",
          *, input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], width),
                         nn.ReLU() if act == "relu" else nn.GELU(), nn.Linear(width, num_classes))
"""


@dataclass
class UserCase:
    id: str
    files: dict[str, str]  # path under tmp (PKG stands for the case's package) -> text
    space: str  # the YAML (PKG as above); launched with --data-dir {data}
    message: str  # must appear in the one error line (PKG and {tmp} filled in)
    args: list[str] = field(default_factory=lambda: ["launch", "{space}", "--data-dir", "{data}"])

    @property
    def pkg(self) -> str:
        return "pkg_" + self.id.replace("-", "_")


def net(body: str) -> dict[str, str]:
    return {"PKG/__init__.py": "", "PKG/nets.py": body}


MODEL_YAML = "epochs: 1\nmodels: {mine: PKG.nets:build}\nparameters: {model: mine}\n"


def model_case(id: str, body: str, message: str, space: str = MODEL_YAML) -> UserCase:
    return UserCase(id, net(body), space, message)


def data_case(id: str, body: str, message: str, extra: str = "") -> UserCase:
    space = f"epochs: 1\ndata: {{source: PKG.data:load{extra}}}\nparameters: {{model: logreg}}\n"
    return UserCase(id, {"PKG/__init__.py": "", "PKG/data.py": "import numpy as np\n" + body}, space, message)


def with_params(params: str) -> str:
    return f"epochs: 1\nmodels: {{mine: PKG.nets:build}}\nparameters: {{model: mine, {params}}}\n"


CASES = [
    # finding and importing the code: the root cause in the user's own file and line
    UserCase("missing-module", {}, MODEL_YAML, "key 'models.mine': cannot import 'PKG.nets': no module named 'PKG'"),
    model_case("syntax-error", "import torch\ndef build(:\n    pass\n", "PKG/nets.py:2: SyntaxError: invalid syntax"),
    model_case("missing-dependency", "import os\nimport not_a_real_dep_xyz\n",
               "PKG/nets.py:2: ModuleNotFoundError: No module named 'not_a_real_dep_xyz'"),
    model_case("raises-at-import", "x = 1\n\nraise RuntimeError('boom at import')\n",
               "PKG/nets.py:3: RuntimeError: boom at import"),
    model_case("missing-function", "def buidl(*, input_shape, num_classes):\n    pass\n",
               "'PKG.nets' has no 'build' (did you mean 'buidl'?)"),
    model_case("not-callable", "build = 3\n", "PKG.nets:build is a int, not a function"),
    # the factory's signature
    model_case("no-default", "def build(width: int, *, input_shape, num_classes):\n    pass\n",
               "parameter 'width' of PKG.nets:build has no default"),
    model_case("training-key-clash", "def build(lr: float = 0.1, *, input_shape, num_classes):\n    pass\n",
               "parameter 'lr' of PKG.nets:build clashes with sweeper's training key 'lr'; rename it"),
    model_case("no-reserved-args", "def build(width: int = 3):\n    pass\n",
               "PKG.nets:build must take input_shape, num_classes as keyword arguments"),
    # YAML values against the factory's annotations
    model_case("value-wrong-type", GOOD_NET, "key 'parameters.width.grid': Input should be a valid integer (got 1.5",
               with_params("width: {grid: [2, 1.5]}")),
    model_case("value-out-of-range", GOOD_NET, "key 'parameters': Input should be greater than or equal to 1 (got 0",
               with_params("width: 0")),
    model_case("value-not-in-literal", GOOD_NET, "Input should be 'relu' or 'gelu' (got 'tanh'",
               with_params("act: tanh")),
    model_case("unknown-user-key", GOOD_NET, "key 'parameters.widht': unknown parameter (did you mean 'width'?)",
               with_params("widht: 3")),
    model_case("uniform-on-whole-key", GOOD_NET,
               "uniform draws fractions but 'width' takes whole numbers; use randint",
               with_params("width: {uniform: [2, 8]}")),
    model_case("unknown-model-name", GOOD_NET, "unknown model 'mien' (did you mean 'mine'?)",
               "epochs: 1\nmodels: {mine: PKG.nets:build}\nparameters: {model: mien}\n"),
    model_case("builtin-name", GOOD_NET, "'cnn' is a built-in model",
               "epochs: 1\nmodels: {cnn: PKG.nets:build}\nparameters: {model: cnn}\n"),
    model_case("bad-ref", GOOD_NET, "model 'mine': 'PKG.nets' is not module.path:function",
               "epochs: 1\nmodels: {mine: PKG.nets}\nparameters: {model: mine}\n"),
    # every reachable architecture built at the data's shape before anything starts
    model_case("wrong-output-shape", GOOD_NET.replace("nn.Linear(width, num_classes)", "nn.Linear(width, 7)"),
               "model 'mine': forward on (2, 1, 28, 28) gives (2, 7), expected (2, 10)",
               with_params("width: {grid: [2, 4]}")),
    model_case("factory-raises-for-one-trial",
               "from torch import nn\n\ndef build(width: int = 4, *, input_shape, num_classes):\n"
               "    if width > 4:\n        raise ValueError(f'width {width} is too wide')\n"
               "    return nn.Sequential(nn.Flatten(), nn.Linear(784, num_classes))\n",
               "trial {'width': 8}: model 'mine' cannot be built for input (1, 28, 28): {tmp}/PKG/nets.py:5: "
               "ValueError: width 8 is too wide", with_params("width: {grid: [4, 8]}")),
    model_case("factory-returns-no-module", "def build(*, input_shape, num_classes):\n    return 42\n",
               "returned a int, not a torch.nn.Module"),
    # your own data
    data_case("data-wrong-type", "def load():\n    return {'x': 1}\n",
              "PKG.data:load returned a dict; return sweeper.Dataset("),
    data_case("data-lengths", "def load():\n    import sweeper\n"
              "    return sweeper.Dataset(train=(np.zeros((10, 3), 'f4'), np.zeros(9, 'i8')))\n",
              "key 'data.source': Dataset.train has 10 rows of x but 9 labels y"),
    data_case("data-labels", "def load():\n    import sweeper\n"
              "    return sweeper.Dataset(train=(np.zeros((10, 3), 'f4'), np.arange(10) % 2 - 1),\n"
              "                           classes=['a', 'b'])\n",
              "Dataset.train y has label -1; labels are 0..K-1"),
    data_case("data-nan", "def load():\n    import sweeper\n    x = np.zeros((10, 3), 'f4'); x[3, 2] = np.nan\n"
              "    return sweeper.Dataset(train=(x, np.arange(10) % 2))\n",
              "Dataset.train x has 1 NaN or infinite value(s), the first in row 3"),
    data_case("data-raises", "def load():\n    raise OSError('no such table')\n",
              "PKG.data:load failed: {tmp}/PKG/data.py:3: OSError: no such table"),
    data_case("data-unknown-arg", "def load(rows: int = 10):\n    pass\n",
              "key 'data.args.row': PKG.data:load takes no argument 'row' (did you mean 'rows'?)",
              extra=", args: {row: 3}"),
    UserCase("data-subset-too-big", {"PKG/__init__.py": "", "PKG/data.py": "import numpy as np\nimport sweeper\n\n"
             "def load():\n    return sweeper.Dataset(train=(np.zeros((10, 3), 'f4'), np.arange(10) % 2))\n"},
             "epochs: 1\ndata: {source: PKG.data:load, train_subset: 50}\nparameters: {model: logreg}\n",
             "data.train_subset 50 is more than the 8"),
]


def test_user_code_corpus_is_distinct() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_user_code_is_one_line_exit_2_nothing_written(tmp_path: Path, tiny_data: Path, case: UserCase) -> None:
    for name, text in case.files.items():
        path = tmp_path / name.replace("PKG", case.pkg)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("PKG", case.pkg))
    (tmp_path / "space.yaml").write_text(case.space.replace("PKG", case.pkg))
    fill = {"{data}": str(tiny_data), "{space}": str(tmp_path / "space.yaml")}
    args = [fill.get(a, a) for a in case.args] + ["--storage", str(tmp_path / "runs")]
    before = tree(tmp_path / "runs")
    listed = sorted(os.listdir(tmp_path))

    result = runner.invoke(app, args)

    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (args, result.stdout, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(tmp_path / "space.yaml") in lines[0], lines[0]
    assert case.message.replace("PKG", case.pkg).replace("{tmp}", str(tmp_path)) in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr and result.stdout == ""
    assert tree(tmp_path / "runs") == before == {}
    assert sorted(os.listdir(tmp_path)) == listed
