"""The suite leaves the user's files alone: the checkout's `var/` (the demo's warehouse, BI
snapshot, scorecard page and Dagster instance) is byte-for-byte what it was before the first test."""

from conftest import CHECKOUT_VAR, VAR_BEFORE, fingerprint


def test_the_suite_left_the_checkouts_var_folder_byte_for_byte_unchanged():
    assert fingerprint(CHECKOUT_VAR) == VAR_BEFORE
