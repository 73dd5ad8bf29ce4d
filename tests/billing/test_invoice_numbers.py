"""Invoice numbers (SPEC §12): gapless and sequential per year, from one upsert per year."""

import pytest
from django.db import transaction

from recur.billing import engine
from recur.billing.models import InvoiceSequence

pytestmark = pytest.mark.django_db(transaction=True)


def test_numbers_continue_per_year_and_a_rolled_back_allocation_leaves_no_gap():
    with transaction.atomic():
        assert engine._allocate_numbers({2027: 3}) == {2027: ["2027-000001", "2027-000002", "2027-000003"]}
    with transaction.atomic():
        assert engine._allocate_numbers({2028: 1, 2027: 2}) == {
            2027: ["2027-000004", "2027-000005"], 2028: ["2028-000001"]}

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        engine._allocate_numbers({2027: 10})
        raise Boom  # the numbers were never used: the counter goes back with the transaction
    with transaction.atomic():
        assert engine._allocate_numbers({2027: 1}) == {2027: ["2027-000006"]}
    assert dict(InvoiceSequence.objects.values_list("year", "last")) == {2027: 6, 2028: 1}
