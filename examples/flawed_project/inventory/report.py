"""Monthly report."""
import json
import os
from typing import List


def monthly_report(store, month) -> List[str]:
    lines = []
    for item in store.items:
        if item[1] == None:
            continue
        lines.append("%s,%s" % (item[0], item[1]))
    return lines


def unused_helper():
    pass
