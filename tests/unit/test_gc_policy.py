import gc

from services.gc_policy import YOUNG_THRESHOLD, tune_for_batches


def test_tuning_raises_only_the_young_threshold_and_returns_the_previous_setting() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        old = tune_for_batches()
        assert old == (700, 10, 10)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*before)
