from apps.core.ids import is_valid_id, new_id


def test_ids_are_prefixed_valid_and_strictly_increasing():
    ids = [new_id("org") for _ in range(5000)]
    assert all(is_valid_id(i, "org") for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_validation_rejects_other_prefixes_and_garbage():
    good = new_id("mem")
    assert not is_valid_id(good, "org")
    for bad in ["", "org_", "org_" + "I" * 26, "org_" + "0" * 25, "ORG_" + "0" * 26, "org_" + "0" * 26 + "\n", None, 5]:
        assert not is_valid_id(bad)
