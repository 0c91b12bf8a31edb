#!/usr/bin/env python3
"""Writes the three redaction benchmark corpora (issue 19) to
agent-kernel/benches/corpora/: prose.txt (English prose, an e-mail address
now and then), logs.txt (digit-dense log lines, a secret now and then) and
fullwidth.txt (Japanese text with full-width digits). Deterministic: the
same files on every run (fixed seed, no dependencies). 64 KiB each; the
bench repeats them up to 16 MiB.

    python3 scripts/gen-redaction-corpora.py
"""
import pathlib
import random

SIZE = 64 * 1024
OUT = pathlib.Path(__file__).resolve().parent.parent / "agent-kernel" / "benches" / "corpora"

WORDS = (
    "the of and a to in is was that for on with as by at from his her it an were "
    "are which this be or has had not but what all when there can more if will "
    "one about up out them so some would into than its time only new could other "
    "people my over such our these even most made after also did many before must "
    "through back years where much your way well down should because each just "
    "those how too little state good very make world still own see men work long "
    "get here between both life being under never day same another know while "
    "last might us great old year off come since against go came right used take "
    "three house system report customer invoice order account service manager "
    "department quarter review project meeting schedule budget revenue growth "
    "contract delivery support request analysis summary policy access data"
).split()


def sentence(rng):
    n = rng.randint(6, 18)
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    if rng.random() < 0.15:
        words.insert(rng.randint(1, n - 1), str(rng.choice([2019, 2020, 2021, 2022, 2023, 2024, 3, 12, 40])))
    if rng.random() < 0.1:
        words.insert(rng.randint(1, n - 1), rng.choice(["(see below)", "e.g.", "i.e.", "don't", "it's", "\"quoted\""]))
    if rng.random() < 0.05:
        words[rng.randint(0, n - 1)] += ":"
    return " ".join(words) + rng.choice([".", ".", ".", "?", "!", ";"])


def prose(rng):
    out, size, next_mail = [], 0, 2000
    while size < SIZE:
        para = " ".join(sentence(rng) for _ in range(rng.randint(3, 7)))
        if size >= next_mail:
            who = rng.choice(["alice", "bob.smith", "j.doe", "support", "sales-team"])
            para += f" Write to {who}@example.com with any questions."
            next_mail += rng.randint(1500, 3000)
        out.append(para + "\n\n")
        size += len(para) + 2
    return "".join(out)[:SIZE]


def logs(rng):
    out, size, line_no = [], 0, 0
    levels = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]
    paths = ["/api/v1/invoices", "/api/v1/orders/17", "/healthz", "/api/v2/customers", "/metrics"]
    while size < SIZE:
        line_no += 1
        t = line_no * 137
        ts = f"2026-12-06T{(t // 3600000) % 24:02d}:{(t // 60000) % 60:02d}:{(t // 1000) % 60:02d}.{t % 1000:03d}Z"
        line = (
            f"{ts} {rng.choice(levels):5} pid={rng.randint(1000, 65000)} req={rng.getrandbits(64):016x} "
            f"{rng.choice(['GET', 'POST', 'PUT'])} {rng.choice(paths)} status={rng.choice([200, 200, 201, 404, 500])} "
            f"bytes={rng.randint(100, 999999)} took={rng.randint(1, 4000)}ms ip=10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)} "
            f"order=ORD-{rng.randint(100000, 999999)} amount={rng.randint(1, 99999)}.{rng.randint(0, 99):02d}"
        )
        if line_no % 40 == 0:
            line += rng.choice([
                " phone=+1-555-123-4567",
                " card 4111 1111 1111 1111",
                " contact=ops@example.com",
                " ssn 123-45-6789",
            ])
        out.append(line + "\n")
        size += len(line.encode()) + 1
    return "".join(out)


FW = str.maketrans("0123456789-", "０１２３４５６７８９－")
KANJI = "日本語文章顧客請求書注文金額支払期限確認担当者会議予定報告売上前年比増加部門管理"
KANA = "のはをにがでとたしてますですからまでよりこれそれあのこの"


def fullwidth(rng):
    out, size, n = [], 0, 0
    while size < SIZE:
        n += 1
        body = "".join(rng.choice(KANJI) + rng.choice(KANA) for _ in range(rng.randint(8, 20)))
        nums = rng.choice([
            f"{rng.randint(2019, 2026)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日",
            f"金額{rng.randint(1000, 9999999)}円",
            f"注文番号{rng.randint(10000, 99999)}",
            f"第{rng.randint(1, 40)}四半期",
        ]).translate(FW)
        line = f"{body}、{nums}。"
        if n % 25 == 0:
            line += rng.choice(["電話０９０－１２３４－５６７８。", "カード４１１１１１１１１１１１１１１１。"])
        out.append(line + ("\n" if n % 4 == 0 else ""))
        size += len(line.encode()) + 1
    text = "".join(out).encode()[:SIZE].decode("utf-8", "ignore")
    return text


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in [("prose", prose), ("logs", logs), ("fullwidth", fullwidth)]:
        text = make(random.Random(19))
        (OUT / f"{name}.txt").write_text(text, encoding="utf-8")
        print(name, len(text.encode()), "bytes")


if __name__ == "__main__":
    main()
