//! Writes the seed corpora under `corpus/<target>/`:
//! `cargo test --manifest-path fuzz/Cargo.toml --lib -- --ignored write_seed_corpora`.
//! Small by design (a few dozen inputs per target); libFuzzer grows its own
//! working corpus elsewhere (see `scripts/fuzz.sh`).

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::kernel_checks::token_seed_tokens;

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&d).expect("corpus dir");
    d
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    fs::write(dir(target).join(name), bytes).expect("seed written");
}

fn with_prefix(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(body);
    v
}

/// Every `#[kernel_span(...)]` argument list in the UI cases.
fn ui_attribute_args() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ui");
    let mut out = Vec::new();
    for sub in ["pass", "fail"] {
        let Ok(entries) = fs::read_dir(root.join(sub)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        {
            let src = fs::read_to_string(&path).expect("case readable");
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("case")
                .to_owned();
            for (i, start) in src
                .match_indices("#[kernel_span(")
                .map(|(i, _)| i)
                .enumerate()
            {
                let body = &src[start + "#[kernel_span(".len()..];
                let mut depth = 1usize;
                let mut end = None;
                for (j, c) in body.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(end) = end {
                    out.push((format!("{sub}-{stem}-{i}"), body[..end].to_owned()));
                }
            }
        }
    }
    out
}

#[test]
#[ignore = "writes the seed corpora; run on purpose"]
fn write_seed_corpora() {
    // ── token ──
    for (i, t) in token_seed_tokens().iter().enumerate() {
        let text = t.to_json().expect("json");
        write(
            "token",
            &format!("valid-{i}"),
            &with_prefix(b"\x00", text.as_bytes()),
        );
        let upper = text.replace(&t.signature, &t.signature.to_ascii_uppercase());
        write(
            "token",
            &format!("upper-signature-{i}"),
            &with_prefix(b"\x00", upper.as_bytes()),
        );
    }
    let base = json!({
        "token_id": "t1", "capability_id": "c", "principal_id": "p",
        "issued_at": 1, "expires_at": 1_800_000_000_000u64,
        "constraints": {"max_rows": 5}, "audit_id": "a", "signature": "00"
    });
    let variants: Vec<(&str, serde_json::Value)> = vec![
        ("unsigned", base.clone()),
        ("missing-field", json!({"token_id": "t1"})),
        ("unknown-field", {
            let mut v = base.clone();
            v["extra"] = json!(1);
            v
        }),
        ("negative-max-rows", {
            let mut v = base.clone();
            v["constraints"] = json!({"max_rows": -1});
            v
        }),
        ("float-max-rows", {
            let mut v = base.clone();
            v["constraints"] = json!({"max_rows": 1.5});
            v
        }),
        ("bad-allowed-fields", {
            let mut v = base.clone();
            v["constraints"] = json!({"allowed_fields": [1]});
            v
        }),
        ("extra-constraints", {
            let mut v = base.clone();
            v["constraints"] = json!({"z": {"b": 1, "a": [0.1, 1e300, -0.0]}, "region": "eu"});
            v
        }),
        ("huge-timestamps", {
            let mut v = base.clone();
            v["expires_at"] = json!(u64::MAX);
            v["issued_at"] = json!(0);
            v
        }),
        ("timestamp-string", {
            let mut v = base.clone();
            v["expires_at"] = json!("2030-01-01");
            v
        }),
        ("escapes", {
            let mut v = base.clone();
            v["principal_id"] = json!("a\"b\\c\u{1}\u{7f}é\u{2028}");
            v
        }),
        ("odd-signature", {
            let mut v = base.clone();
            v["signature"] = json!("zz".repeat(32));
            v
        }),
        ("array", json!([1, 2, 3])),
    ];
    for (name, v) in variants {
        write(
            "token",
            name,
            &with_prefix(b"\x00", v.to_string().as_bytes()),
        );
    }
    write(
        "token",
        "duplicate-field",
        b"\x00{\"token_id\":\"a\",\"token_id\":\"b\"}",
    );
    write("token", "truncated", b"\x00{\"token_id\":\"a\",\"capa");
    write(
        "token",
        "deep",
        &with_prefix(b"\x00", "[".repeat(200).as_bytes()),
    );
    for i in 0u8..12 {
        let body: Vec<u8> = (0..64u8)
            .map(|j| j.wrapping_mul(37).wrapping_add(i.wrapping_mul(11)))
            .collect();
        write(
            "token",
            &format!("structured-{i}"),
            &with_prefix(&[1 + 2 * i], &body),
        );
    }

    // ── redaction ──
    let texts = [
        "contact bob@example.com or +1-555-123-4567",
        "card 4111 1111 1111 1111, ssn 123-45-6789",
        "Authorization: Bearer abc.def-ghi_jkl~mno+pqr/stu==",
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl here",
        "api_key=sk_live_0123456789abcdef token: abc password=\"hunter2\"",
        "postgres://admin:p@ss@db.internal:5432/app?sslmode=require",
        "order 12345678 shipped 2024-01-02 to 10.0.0.1",
        "phone (020) 7946-0958 ext 12",
        "١٢٣-٤٥-٦٧٨٩ and ０１２３４５６７８９０１２",
        "nothing to see here",
        "[REDACTED]@example.com",
        "a@b.c@d.e",
        "x token=[REDACTED] y",
    ];
    for (i, t) in texts.iter().enumerate() {
        write(
            "redaction",
            &format!("text-{i}"),
            &with_prefix(&[3], t.as_bytes()),
        );
    }
    let docs = [
        json!({"email": "a@b.co", "name": "Ann", "note": "call 555 123 4567", "nested": {"password": "x", "deep": {"deeper": [1, {"ssn": "1"}]}}}),
        json!([{"id": 1, "EMAIL": "x@y.io"}, {"id": 2, "bob@example.com": "key"}, "s 123-45-6789", [[["deep"]]]]),
        json!({"0@a.co": 1, "[REDACTED]": 2, "b@c.de": 3}),
        json!({"secret": {"a": 1}, "Card_Number": 4111111111111111u64, "cvv": null}),
        json!("just a string with eve@example.net"),
        json!(42),
    ];
    for (i, d) in docs.iter().enumerate() {
        for cfg in [0x03u8, 0x0b, 0x13, 0x1a, 0x81] {
            write(
                "redaction",
                &format!("json-{i}-{cfg:02x}"),
                &with_prefix(&[cfg], d.to_string().as_bytes()),
            );
        }
    }
    for i in 0u8..6 {
        let body: Vec<u8> = (0..96u8)
            .map(|j| j.wrapping_mul(29).wrapping_add(i.wrapping_mul(7)))
            .collect();
        write(
            "redaction",
            &format!("structured-{i}"),
            &with_prefix(&[0x40 | i], &body),
        );
    }

    // ── firewall ──
    let rows = json!([
        {"id": 1, "status": "paid", "amount": 10.5, "email": "a@b.co", "note": "ok"},
        {"id": 2, "status": "open", "amount": 3, "email": "c@d.co", "tags": ["x"]},
        {"id": 3, "status": "paid", "amount": -1, "ssn": "123-45-6789", "flag": true},
    ]);
    let fw_docs = [
        rows.clone(),
        json!({"customer": {"name": "Ann", "email": "ann@example.com"}, "total": 3, "items": [1, 2]}),
        json!(["a", 1, null, {"k": "v"}, [1, [2]]]),
        json!("x".repeat(600) + " bob@example.com"),
        json!(null),
        json!([]),
        json!([[1, 2], [3, 4]]),
        json!([{"a": 1}, 2, "three"]),
    ];
    for (i, d) in fw_docs.iter().enumerate() {
        for (j, cfg) in [
            [0u8, 200, 20, 5],
            [3, 12, 0x45, 2],
            [0x4b, 3, 31, 0x86],
            [7 | 8, 0, 1, 0],
            [6, 255, 255, 255],
        ]
        .iter()
        .enumerate()
        {
            write(
                "firewall",
                &format!("doc-{i}-{j}"),
                &with_prefix(cfg, d.to_string().as_bytes()),
            );
        }
    }
    for i in 0u8..4 {
        let body: Vec<u8> = (0..80u8)
            .map(|j| j.wrapping_mul(53).wrapping_add(i))
            .collect();
        write(
            "firewall",
            &format!("structured-{i}"),
            &with_prefix(&[0x80 | i, 40, 0x2f, 5], &body),
        );
    }

    // ── expand ──
    let queries = [
        json!({}),
        json!({"filter": {"status": "paid"}}),
        json!({"filter": {"status": "paid"}, "offset": 1, "limit": 1}),
        json!({"fields": ["id", "email"], "limit": 2}),
        json!({"filter": {"email": "bob@example.com"}}),
        json!({"limit": 18446744073709551615u64}),
        json!({"limit": -1}),
        json!({"offset": 1.5}),
        json!({"unknown": 1}),
        json!({"filter": {"nested": {"deep": [1, [2, [3]]], "email": "x@y.io"}}}),
        json!({"fields": []}),
    ];
    for (i, q) in queries.iter().enumerate() {
        for cfg in [[0u8, 0], [0x11, 2], [0x06, 0], [0x1d, 30]] {
            write(
                "expand",
                &format!("query-{i}-{:02x}", cfg[0]),
                &with_prefix(&cfg, q.to_string().as_bytes()),
            );
        }
    }
    let mut with_data = with_prefix(&[0x01, 0], br#"{"filter":{"a":1},"fields":["a","b"]}"#);
    with_data.push(0);
    with_data.extend_from_slice(br#"[{"a":1,"b":"x@y.io","c":3},{"a":2},{"a":1,"b":[1,2]}]"#);
    write("expand", "query-and-data", &with_data);
    for i in 0u8..6 {
        let body: Vec<u8> = (0..64u8)
            .map(|j| j.wrapping_mul(17).wrapping_add(i * 3))
            .collect();
        write(
            "expand",
            &format!("structured-{i}"),
            &with_prefix(&[0x80 | (i * 21 % 0x80), i], &body),
        );
    }

    // ── shapes ── (max_depth byte, shape, n as u16 LE, two key templates or
    // unit choices, density; see `kernel_checks::shape`)
    for (name, c, kind, n, t1, t2, density) in [
        ("colliding-email-keys", 3u8, 0u8, 3999u16, 0u8, 0u8, 0u8),
        ("renamed-names-taken", 3, 0, 2000, 0, 2, 1),
        ("phone-keys", 3, 0, 3000, 1, 1, 0),
        ("rows-of-distinct-keys", 3, 1, 4095, 3, 9, 0),
        ("candidates-spaced", 3, 2, 4095, 0, 13, 0),
        ("candidates-glued", 3, 2, 4095, 5, 3, 1),
        ("candidates-hyphens", 3, 2, 4095, 1, 0, 2),
        ("deep-nesting", 0x87, 3, 199, 2, 0, 0),
        ("deep-nesting-default-depth", 3, 3, 150, 3, 0, 1),
        ("rows-sharing-sensitive-keys", 3, 4, 4095, 4, 5, 0),
    ] {
        let [lo, hi] = n.to_le_bytes();
        write("shapes", name, &[c, kind, lo, hi, t1, t2, density]);
    }

    // ── macro_args ──
    for (name, args) in ui_attribute_args() {
        write(
            "macro_args",
            &name,
            &with_prefix(&[(name.len() % 5) as u8], args.as_bytes()),
        );
    }
    for i in 0u8..6 {
        let body: Vec<u8> = (0..64u8)
            .map(|j| j.wrapping_mul(41).wrapping_add(i * 5))
            .collect();
        write(
            "macro_args",
            &format!("structured-{i}"),
            &with_prefix(&[0x80 | i], &body),
        );
    }
}
