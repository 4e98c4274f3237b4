"""kdbench's benchmark tests, from the installed package (zoo.suite): every row of the catalogue, this project's
own included ([tool.kdbench] row_modules), trained, measured and gated against baselines/; and the inference
speed of every model. Run `pytest bench/`; `--update-baselines` records the baselines."""
from zoo.suite.inference import test_inference as test_inference
from zoo.suite.rows import test_pair as test_pair
