//! Output: aligned columns for a person at a terminal, JSON for a program (or a pipe).

use std::io::IsTerminal;

use crate::Output;

/// Whether to print JSON: as asked, else when stdout is not a terminal (a pipe or a file is
/// read by a program: `borderwatch surges | jq` needs no flag).
pub(crate) fn wants_json(output: Option<Output>) -> bool {
    match output {
        Some(Output::Json) => true,
        Some(Output::Table) => false,
        None => !std::io::stdout().is_terminal(),
    }
}

/// Rows under a header, each column as wide as its widest cell, two spaces apart; the last
/// column is not padded (it is often long text that the terminal wraps).
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        let cells: Vec<&str> = cells.collect();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_the_last_is_not_padded() {
        let out = render(
            &["ID", "SEVERITY", "TEXT"],
            &[
                vec!["sg-1".into(), "critical".into(), "a long one".into()],
                vec!["sg-22".into(), "low".into(), "".into()],
            ],
        );
        assert_eq!(
            out,
            "ID     SEVERITY  TEXT\nsg-1   critical  a long one\nsg-22  low\n"
        );
    }
}
