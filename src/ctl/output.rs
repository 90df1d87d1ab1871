//! rabbitmqctl's output: an informational line ("Listing vhosts ..."),
//! then tab-separated rows under a header row; `-q` drops the line,
//! `-s`/`--silent` the header too; `--formatter json` prints the rows as
//! JSON objects instead.

use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Formatter {
    Table,
    Json,
}

pub(crate) struct Style {
    pub formatter: Formatter,
    /// No informational lines.
    pub quiet: bool,
    /// No header row.
    pub no_headers: bool,
}

/// A value as rabbitmqctl prints it in a table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Array(a) if a.iter().all(Value::is_string) => {
            let items: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(o) if o.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

impl Style {
    pub(crate) fn info(&self, line: &str) {
        if !self.quiet && self.formatter == Formatter::Table {
            println!("{line}");
        }
    }

    /// Print `rows` (JSON objects) under `columns`.
    pub(crate) fn table(&self, columns: &[String], rows: &[Value]) {
        match self.formatter {
            Formatter::Json => {
                let out: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        let m: Map<String, Value> = columns
                            .iter()
                            .map(|c| (c.clone(), r.get(c).cloned().unwrap_or(Value::Null)))
                            .collect();
                        Value::Object(m)
                    })
                    .collect();
                println!("{}", Value::Array(out));
            }
            Formatter::Table => {
                if !self.no_headers {
                    println!("{}", columns.join("\t"));
                }
                for r in rows {
                    let cells: Vec<String> = columns
                        .iter()
                        .map(|c| r.get(c).map(cell).unwrap_or_default())
                        .collect();
                    println!("{}", cells.join("\t"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cell;
    use serde_json::json;

    #[test]
    fn cells_look_like_rabbitmqctls() {
        assert_eq!(
            cell(&json!(["monitoring", "policymaker"])),
            "[monitoring, policymaker]"
        );
        assert_eq!(cell(&json!([])), "[]");
        assert_eq!(cell(&json!({})), "[]");
        assert_eq!(cell(&json!(true)), "true");
        assert_eq!(cell(&json!(5)), "5");
        assert_eq!(cell(&json!("^a")), "^a");
    }
}
