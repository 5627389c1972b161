import time

from inventory.store import Store


def test_add():
    store = Store("main")
    store.add("A1", 3, 9.5, "shelf", "acme", "", [])
    assert store.items


def test_describe_runs():
    store = Store("main")
    store.describe()


def test_queue_drains():
    store = Store("main")
    store.queue.append(("B2", 1, 2.0, "bin", "acme", "", []))
    time.sleep(0.5)
    store.process_queue()
    assert not store.queue
