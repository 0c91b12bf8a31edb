//! The billing data set of the workspace's `data/billing_invoices.json`: loading,
//! validation, and the queries the billing tools answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::InputError;

/// The file name of the billing data in the workspace's `data/` folder.
pub const DATA_FILE: &str = "billing_invoices.json";

/// The fields every invoice row must have, with their JSON types.
const REQUIRED: [(&str, Kind); 8] = [
    ("id", Kind::String),
    ("customer_name", Kind::String),
    ("email", Kind::String),
    ("phone", Kind::String),
    ("amount", Kind::Number),
    ("currency", Kind::String),
    ("status", Kind::String),
    ("date", Kind::Date),
];

/// "Today" for the overdue computation, fixed so that runs are reproducible
/// (the data's invoices are dated 2023 and 2024).
pub const AS_OF: &str = "2025-01-31";

/// Payment terms: an invoice is overdue this many days after its date.
pub const PAYMENT_TERMS_DAYS: i64 = 30;

#[derive(Clone, Copy)]
enum Kind {
    String,
    Number,
    Date,
}

/// Where the data is looked for when `--data` is not given:
/// `<workspace>/data/billing_invoices.json`, the copy the repository carries.
pub fn default_data_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data")
        .join(DATA_FILE)
}

/// The invoices, validated, shared between the tools without copying.
#[derive(Debug, Clone)]
pub struct BillingData {
    rows: Arc<Value>,
    path: PathBuf,
}

impl BillingData {
    /// Reads and validates the invoices at `path`.
    ///
    /// # Errors
    /// [`InputError`] naming the path when the file is missing or unreadable,
    /// is not JSON, is not a non-empty array of objects, or a row lacks a
    /// field or has one of the wrong type (naming the row and the field).
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InputError::new(format!(
                "cannot read the billing data at {}: {e}\n  (pass --data PATH; the repository carries the file as data/{DATA_FILE})",
                path.display()
            ))
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            InputError::new(format!(
                "the billing data at {} is not valid JSON: {e}",
                path.display()
            ))
        })?;
        Self::from_value(value, path)
    }

    /// Validates already-parsed invoices (`origin` names them in errors).
    ///
    /// # Errors
    /// As [`load`](Self::load), for the shape of the data.
    pub fn from_value(value: Value, origin: &Path) -> Result<Self, InputError> {
        let bad = |msg: String| InputError::new(format!("{}: {msg}", origin.display()));
        let rows = value
            .as_array()
            .ok_or_else(|| bad("expected a JSON array of invoices".to_owned()))?;
        if rows.is_empty() {
            return Err(bad("the invoice array is empty".to_owned()));
        }
        for (i, row) in rows.iter().enumerate() {
            let obj = row
                .as_object()
                .ok_or_else(|| bad(format!("row {i} is not a JSON object")))?;
            let id = obj.get("id").and_then(Value::as_str).unwrap_or("?");
            for (field, kind) in REQUIRED {
                let v = obj.get(field);
                let ok = match kind {
                    Kind::String => v.is_some_and(Value::is_string),
                    Kind::Number => v.is_some_and(Value::is_number),
                    Kind::Date => v.and_then(Value::as_str).and_then(day_number).is_some(),
                };
                if !ok {
                    let want = match kind {
                        Kind::String => "a string",
                        Kind::Number => "a number",
                        Kind::Date => "a YYYY-MM-DD date",
                    };
                    return Err(bad(format!(
                        "row {i} (id {id}): field '{field}' must be {want}"
                    )));
                }
            }
        }
        Ok(Self {
            rows: Arc::new(value),
            path: origin.to_path_buf(),
        })
    }

    /// All invoices, as one shared JSON array.
    pub fn rows(&self) -> &Arc<Value> {
        &self.rows
    }

    /// Where the invoices were read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of invoices.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is no invoice (never, once validated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn iter(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.rows
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// The invoice with this id.
    pub fn find(&self, id: &str) -> Option<&Map<String, Value>> {
        self.iter()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
    }

    /// `billing.list_invoices`: every invoice (shared, not copied), or those
    /// with `status`.
    pub fn list(&self, status: Option<&str>) -> Arc<Value> {
        match status {
            None => Arc::clone(&self.rows),
            Some(status) => Arc::new(Value::Array(
                self.iter()
                    .filter(|r| r.get("status").and_then(Value::as_str) == Some(status))
                    .map(|r| Value::Object(r.clone()))
                    .collect(),
            )),
        }
    }

    /// `billing.summarize_spend`: totals and counts grouped by `currency` or
    /// `status`.
    ///
    /// # Errors
    /// A message for the caller when `group_by` is anything else.
    pub fn spend(&self, group_by: &str) -> Result<Value, String> {
        if group_by != "currency" && group_by != "status" {
            return Err(format!(
                "unsupported group_by '{group_by}': use 'currency' or 'status'"
            ));
        }
        let mut groups: BTreeMap<String, (f64, u64)> = BTreeMap::new();
        for row in self.iter() {
            let key = row
                .get(group_by)
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let amount = row.get("amount").and_then(Value::as_f64).unwrap_or(0.0);
            let entry = groups.entry(key.to_owned()).or_default();
            entry.0 += amount;
            entry.1 += 1;
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(key, (total, count))| {
                json!({ group_by: key, "total": round2(total), "invoices": count })
            })
            .collect();
        Ok(json!(groups))
    }

    /// The collections service's `overdue_reminders`: overdue invoices at
    /// least `min_days` past their terms (as of [`AS_OF`]), most overdue
    /// first, each with the reminder text the collections team sent, which
    /// names the customer's e-mail address and phone number.
    pub fn overdue_reminders(&self, min_days: i64) -> Value {
        let today = day_number(AS_OF).unwrap_or(0);
        let mut rows: Vec<(i64, Value)> = self
            .iter()
            .filter(|r| r.get("status").and_then(Value::as_str) == Some("overdue"))
            .filter_map(|r| {
                let date = r.get("date").and_then(Value::as_str)?;
                let days = today - day_number(date)? - PAYMENT_TERMS_DAYS;
                (days >= min_days).then(|| {
                    let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
                    let reminder = format!(
                        "Reminder e-mailed to {} on {AS_OF}; call {} if still unpaid by Friday.",
                        text("email"),
                        text("phone"),
                    );
                    let row = json!({
                        "id": text("id"),
                        "customer_name": text("customer_name"),
                        "email": text("email"),
                        "phone": text("phone"),
                        "amount": r.get("amount").cloned().unwrap_or(Value::Null),
                        "currency": text("currency"),
                        "days_overdue": days,
                        "reminder": reminder,
                    });
                    (days, row)
                })
            })
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        Value::Array(rows.into_iter().map(|(_, row)| row).collect())
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (proleptic Gregorian), or
/// `None` if it is not one.
pub fn day_number(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(m - 1).ok()?)?;
    if !(1..=max_day).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn day_numbers() {
        assert_eq!(day_number("1970-01-01"), Some(0));
        assert_eq!(day_number("2000-03-01"), Some(11_017));
        assert_eq!(
            day_number("2024-02-29").unwrap() + 1,
            day_number("2024-03-01").unwrap()
        );
        assert_eq!(day_number("2023-02-29"), None);
        assert_eq!(day_number("2023-13-01"), None);
        assert_eq!(day_number("23-01-01"), None);
        assert_eq!(day_number("yesterday"), None);
    }

    fn sample() -> BillingData {
        let rows = json!([
            {"id": "INV-1", "customer_name": "Ann Lee", "email": "ann@example.com", "phone": "+1-555-0101",
             "amount": 10.5, "currency": "USD", "status": "overdue", "date": "2024-01-01"},
            {"id": "INV-2", "customer_name": "Bo Kim", "email": "bo@example.com", "phone": "+1-555-0102",
             "amount": 4.25, "currency": "EUR", "status": "paid", "date": "2024-12-30"},
            {"id": "INV-3", "customer_name": "Cy Ng", "email": "cy@example.com", "phone": "+1-555-0103",
             "amount": 1.0, "currency": "USD", "status": "overdue", "date": "2024-12-30"},
        ]);
        BillingData::from_value(rows, Path::new("sample.json")).unwrap()
    }

    #[test]
    fn queries() {
        let d = sample();
        assert_eq!(d.len(), 3);
        assert!(Arc::ptr_eq(&d.list(None), d.rows()));
        assert_eq!(d.list(Some("overdue")).as_array().unwrap().len(), 2);
        let spend = d.spend("currency").unwrap();
        assert_eq!(spend[0]["currency"], "EUR");
        assert_eq!(spend[1]["total"], 11.5);
        assert_eq!(spend[1]["invoices"], 2);
        assert!(d.spend("email").unwrap_err().contains("'email'"));
        assert_eq!(d.overdue_reminders(0).as_array().unwrap().len(), 2);
        let overdue = d.overdue_reminders(5);
        assert_eq!(
            overdue.as_array().unwrap().len(),
            1,
            "INV-3 is only 2 days past its terms"
        );
        assert_eq!(overdue[0]["id"], "INV-1");
        assert!(
            overdue[0]["reminder"]
                .as_str()
                .unwrap()
                .contains("ann@example.com")
        );
        assert_eq!(d.find("INV-2").unwrap()["amount"], 4.25);
    }

    #[test]
    fn bad_data_is_named() {
        let p = Path::new("x.json");
        let e = BillingData::from_value(json!({"a": 1}), p).unwrap_err();
        assert!(e.0.contains("array"), "{e}");
        let e = BillingData::from_value(json!([]), p).unwrap_err();
        assert!(e.0.contains("empty"), "{e}");
        let e = BillingData::from_value(json!([{"id": "INV-9", "amount": "ten"}]), p).unwrap_err();
        assert!(
            e.0.contains("INV-9") && e.0.contains("customer_name"),
            "{e}"
        );
        let e = BillingData::load(Path::new("/nonexistent/billing.json")).unwrap_err();
        assert!(e.0.contains("--data"), "{e}");
    }

    #[test]
    fn the_repository_data_loads() {
        let d = BillingData::load(&default_data_path()).unwrap();
        assert_eq!(d.len(), 200);
    }
}
