//! `--format pretty` tables exactly as the LangSmith CLI draws them: a title
//! underlined with `─`, centred upper-case headers, a `-`/`+` separator, numbers right-aligned,
//! no borders, two-space column gaps, trailing spaces included.

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(width(s))))
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

fn centre(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(width(s));
    let left = gap / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(gap - left))
}

/// Whether tablewriter treats a cell as a number: `^-?(\d{1,3}(,\d{3})*|\d+)(\.\d+)?$`.
fn looks_numeric(cell: &str) -> bool {
    let s = cell.trim();
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if int.is_empty() {
        return false;
    }
    if int.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let mut groups = int.split(',');
    let first = groups.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Render a titled table; every line ends with `\n`.
pub fn render(title: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let headers: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| width(&r[i]))
                .chain([width(&headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let last = headers.len() - 1;
    let mut out = format!("{title}\n{}\n", "─".repeat(title.len()));

    out.push(' ');
    for (i, h) in headers.iter().enumerate() {
        let sep = if i == last { " " } else { "  " };
        out.push_str(&format!(" {} {sep}", centre(h, widths[i])));
    }
    out.push('\n');

    out.push('-');
    for (i, w) in widths.iter().enumerate() {
        out.push_str(&format!(
            "-{}-{}",
            "-".repeat(*w),
            if i == last { "-" } else { "+" }
        ));
    }
    out.push('\n');

    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let lead = if i == 0 { " " } else { "  " };
            let text = if looks_numeric(cell) {
                pad_left(cell, widths[i])
            } else {
                pad_right(cell, widths[i])
            };
            out.push_str(&format!("{lead} {text} "));
        }
        out.push_str(" \n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_byte_for_byte() {
        let rows = vec![
            [
                "my-vm",
                "ready",
                "2",
                "512 MB",
                "8.0 GB",
                "3f2a9c1e...",
                "2026-03-29 00:09",
            ],
            ["db", "stopped", "4", "1.0 GB", "-", "-", "2026-03-30 12:41"],
        ]
        .into_iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect::<Vec<Vec<String>>>();
        let headers = [
            "Name", "Status", "VCPUs", "Mem", "Rootfs", "Snapshot", "Created",
        ];
        let expected = concat!(
            "Sandboxes\n",
            "─────────\n",
            "  NAME     STATUS     VCPUS     MEM      ROOTFS     SNAPSHOT          CREATED       \n",
            "--------+---------+-------+--------+--------+-------------+-------------------\n",
            "  my-vm    ready          2    512 MB    8.0 GB    3f2a9c1e...    2026-03-29 00:09  \n",
            "  db       stopped        4    1.0 GB    -         -              2026-03-30 12:41  \n",
        );
        assert_eq!(render("Sandboxes", &headers, &rows), expected);
    }

    #[test]
    fn numeric_cells() {
        for yes in ["2", "-4", "1,024", "3.5", "12345"] {
            assert!(looks_numeric(yes), "{yes}");
        }
        for no in ["512 MB", "-", "1,02", "3.", "abc", ""] {
            assert!(!looks_numeric(no), "{no}");
        }
    }
}
