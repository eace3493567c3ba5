//! The LangSmith CLI's pretty table and its cell helpers, drawn independently of the
//! CLI's own renderer so the tests compare against the documented format rather than against the code.

/// The LangSmith CLI's table drawn independently of the CLI's own renderer.
pub fn expected_table(title: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let numeric = |c: &str| {
        let c = c.trim().strip_prefix('-').unwrap_or(c.trim());
        let (int, frac) = c.split_once('.').unwrap_or((c, "0"));
        !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && !frac.is_empty()
            && frac.bytes().all(|b| b.is_ascii_digit())
    };
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap()
        })
        .collect();
    let mut out = format!("{title}\n{}\n ", "─".repeat(title.len()));
    for (i, h) in headers.iter().enumerate() {
        let gap = widths[i] - h.len();
        let sep = if i + 1 == headers.len() { " " } else { "  " };
        out += &format!(
            " {}{}{} {sep}",
            " ".repeat(gap / 2),
            h.to_uppercase(),
            " ".repeat(gap - gap / 2)
        );
    }
    out += "\n-";
    for (i, w) in widths.iter().enumerate() {
        let end = if i + 1 == widths.len() { "-" } else { "+" };
        out += &format!("-{}-{end}", "-".repeat(*w));
    }
    out += "\n";
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let lead = if i == 0 { " " } else { "  " };
            let body = if numeric(cell) {
                format!("{pad}{cell}")
            } else {
                format!("{cell}{pad}")
            };
            out += &format!("{lead} {body} ");
        }
        out += " \n";
    }
    out
}

pub fn local_minute(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_string())
}

pub fn bytes_text(b: i64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MB", b as f64 / (1u64 << 20) as f64)
    }
}
