"""The rows this package adds to kdbench (entry point `kdbench.rows`): its student on MNIST without KD, with
Hinton KD and with DKD, all from kdbench's MNIST teacher (mnist-mlp1200-teacher), in the quick tier."""
from kd_dkd import distiller, models  # noqa: F401  (they register the student and the distiller)
from zoo.catalog.pairs import Pair, register_rows
from zoo.catalog.recipes import Distill, ModelSpec, Recipe

STUDENT = ModelSpec.of("dkd_mlp_bn")
TEACHER = {"quick": "mnist-mlp1200-teacher"}
# 10% of MNIST, 3 epochs, 3 seeds: about a minute a row on 2 CPU cores.
QUICK = Recipe(epochs=3, batch_size=128, optimizer="sgd", lr=0.05, train_subset=0.1, seeds=3)

register_rows(
    Pair("dkd-student", "mnist", STUDENT, {"quick": QUICK}),
    Pair("dkd-student-kd", "mnist", STUDENT, {"quick": QUICK.replace(distill=Distill(alpha=0.9, temperature=4.0))},
         teacher=TEACHER, control="dkd-student"),
    Pair("dkd-student-dkd", "mnist", STUDENT,
         {"quick": QUICK.replace(distill=Distill(alpha=1.0, temperature=4.0, method="dkd", options=(("beta", 8.0),)))},
         teacher=TEACHER, control="dkd-student"),
)
