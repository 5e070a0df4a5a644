//! The JSON-lines side of the generic format: one object per line, its keys the column
//! names; the first object stands for the header.

use std::collections::HashMap;

use crate::error::IngestError;

use super::row::{Raw, Rows};

pub(super) fn parse_json_lines(text: &str, rows: &mut Rows) -> Result<(), IngestError> {
    let mut keys_checked = false;
    for (i, line_text) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let t = line_text.trim();
        if t.is_empty() {
            continue;
        }
        rows.count_row()?;
        let object = match serde_json::from_str::<serde_json::Value>(t) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                rows.reject(
                    line,
                    "",
                    t,
                    "expected one JSON object per line, e.g. {\"period\": \"2024-Q3\", …}".into(),
                );
                continue;
            }
            Err(e) => {
                rows.reject(line, "", t, format!("not a JSON object: {e}"));
                continue;
            }
        };
        let fields: HashMap<String, &serde_json::Value> = object
            .iter()
            .map(|(k, v)| (k.trim().to_lowercase(), v))
            .collect();
        let category_column = if fields.contains_key("category") || !fields.contains_key("purpose")
        {
            "category"
        } else {
            "purpose"
        };
        if !keys_checked {
            // The first object stands for the header: a key it lacks is missing everywhere.
            keys_checked = true;
            let mut found: Vec<String> = object.keys().map(|k| k.trim().to_lowercase()).collect();
            found.sort();
            for column in ["period", "country", category_column, "count"] {
                if !fields.contains_key(column) {
                    return Err(IngestError::MissingColumn {
                        line,
                        column: if column == "purpose" {
                            "category"
                        } else {
                            column
                        },
                        found,
                    });
                }
            }
            if !fields.contains_key("source") && rows.default_source.is_none() {
                return Err(IngestError::NoSource);
            }
        }
        let mut text_of = |key: &'static str| -> Option<Option<String>> {
            match fields.get(key) {
                None | Some(serde_json::Value::Null) => Some(None),
                Some(serde_json::Value::String(s)) => Some(Some(s.clone())),
                Some(serde_json::Value::Number(n)) => Some(Some(n.to_string())),
                Some(other) => {
                    rows.reject(
                        line,
                        key,
                        &other.to_string(),
                        format!("`{key}` must be text or a number"),
                    );
                    None
                }
            }
        };
        let Some(source) = text_of("source") else {
            continue;
        };
        let Some(period) = text_of("period") else {
            continue;
        };
        let Some(country) = text_of("country") else {
            continue;
        };
        let Some(category) = text_of(category_column) else {
            continue;
        };
        let Some(count) = text_of("count") else {
            continue;
        };
        let required = [
            ("period", &period),
            ("country", &country),
            (category_column, &category),
            ("count", &count),
        ];
        if let Some((key, _)) = required.iter().find(|(_, v)| v.is_none()) {
            rows.reject(line, key, "", format!("the `{key}` key is missing or null"));
            continue;
        }
        let raw = Raw {
            source: source.as_deref(),
            period: period.as_deref().unwrap_or_default(),
            country: country.as_deref().unwrap_or_default(),
            category_column,
            category: category.as_deref().unwrap_or_default(),
            count: count.as_deref().unwrap_or_default(),
        };
        rows.accept(line, &raw);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use borderwatch_model::Period;

    use super::*;
    use crate::generic::whole::parse_generic;

    #[test]
    fn parses_json_lines() {
        let text = "{\"source\":\"fsb\",\"period\":\"2024-Q3\",\"country\":\"PRK\",\"category\":\"study\",\"count\":3765}\n\
                    \n\
                    {\"Period\":\"2024-Q4\",\"COUNTRY\":\"КНДР\",\"purpose\":\"учеба\",\"count\":\"3752\",\"note\":1}\n";
        let p = parse_generic(text, Some("fsb")).unwrap();
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.rows, 2);
        assert_eq!(p.observations[0].count, 3765);
        assert_eq!(p.observations[1].period, Period::Quarter(2024, 4));
        assert_eq!(p.observations[1].count, 3752);
        assert_eq!(p.observations[1].source, "fsb");
    }

    #[test]
    fn json_lines_count_must_be_a_whole_number() {
        let text = "{\"source\":\"fsb\",\"period\":\"2024\",\"country\":\"PRK\",\"category\":\"study\",\"count\":12.0}\n\
                    {\"source\":\"fsb\",\"period\":\"2023\",\"country\":\"PRK\",\"category\":\"study\",\"count\":-1}\n\
                    {\"source\":\"fsb\",\"period\":\"2022\",\"country\":\"PRK\",\"category\":\"study\",\"count\":[1]}\n";
        let p = parse_generic(text, None).unwrap();
        assert!(p.observations.is_empty());
        let rows: Vec<(u64, &str)> = p
            .rejected
            .iter()
            .map(|r| (r.row, r.column.as_str()))
            .collect();
        assert_eq!(rows, vec![(1, "count"), (2, "count"), (3, "count")]);
    }

    #[test]
    fn json_lines_missing_key_in_first_object_is_a_file_error() {
        let text =
            "{\"source\":\"fsb\",\"period\":\"2024\",\"country\":\"PRK\",\"category\":\"study\"}\n";
        let e = parse_generic(text, None).unwrap_err();
        assert!(
            matches!(
                &e,
                IngestError::MissingColumn {
                    column: "count",
                    line: 1,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn malformed_json_line_is_rejected_and_others_kept() {
        let text = "{\"source\":\"fsb\",\"period\":\"2024\",\"country\":\"PRK\",\"category\":\"study\",\"count\":1}\n\
                    {\"source\":\"fsb\",\n";
        let p = parse_generic(text, None).unwrap();
        assert_eq!(p.observations.len(), 1);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].row, 2);
        assert!(p.rejected[0].reason.contains("not a JSON object"));
    }
}
