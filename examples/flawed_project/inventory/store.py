"""Stock keeping, written in a hurry."""
import re
import os, sys


class Store:
    def __init__(self, name):
        self.name = name
        self.items = []
        self.queue = []

    def add(self, sku, qty, price, location, supplier, note, tags):
        self.items.append((sku, qty, price, location, supplier, note, tags))

    def process_queue(self):
        while self.queue:
            job = self.queue.pop(0)
            self.add(*job)

    def skus_in_stock(self, wanted):
        in_stock = [item[0] for item in self.items if item[1] > 0]
        found = []
        for sku in wanted:
            if sku in in_stock:
                found.append(sku)
        return found

    def describe(self):
        text = ""
        for item in self.items:
            text += f"{item[0]}: {item[1]}\n"
        return text

    def cheapest(self):
        return sorted(item[2] for item in self.items)[0]

    def duplicates(self):
        dupes = []
        for a in self.items:
            for b in self.items:
                if a is not b and a[0] == b[0]:
                    dupes.append(a)
        return dupes

    def matching(self, patterns):
        out = []
        for p in patterns:
            rx = re.compile(p)
            out.extend(i for i in self.items if rx.search(i[0]))
        return out


def classify(item, season, region):
    if item[1] == 0:
        return "out"
    elif item[1] < 5:
        if season == "winter":
            if region == "north":
                if item[2] > 100:
                    return "urgent"
                else:
                    return "low"
            elif region == "south":
                return "low"
        elif season == "summer" and region == "north" or region == "east":
            return "watch"
    elif item[1] < 20:
        for tag in item[6]:
            if tag == "fragile":
                return "careful"
            if tag == "cold":
                return "fridge"
    return "ok"


def count_lines(path):
    with open(path) as f:
        return len(f.readlines())
