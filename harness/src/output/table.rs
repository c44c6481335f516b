//! Aligned plain-text tables: text columns left, numbers right; colour, when
//! asked for, goes on after the padding so it never shifts a column.

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// What a piece of text is drawn with, where colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Bold,
    Green,
    Yellow,
    Red,
}

/// ANSI colour, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Paint {
    pub colour: bool,
}

impl Paint {
    pub const PLAIN: Paint = Paint { colour: false };

    /// Colour on standard output when it is a terminal and `NO_COLOR` is
    /// unset or empty (no-color.org): files and pipes get plain text.
    pub fn for_stdout() -> Paint {
        let opted_out = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint {
            colour: !opted_out && std::io::stdout().is_terminal(),
        }
    }

    pub fn paint(self, style: Style, text: &str) -> String {
        let code = match style {
            Style::Plain => return text.to_string(),
            Style::Bold => "1",
            Style::Green => "32",
            Style::Yellow => "33",
            Style::Red => "31",
        };
        if !self.colour || text.is_empty() {
            return text.to_string();
        }
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

enum Line {
    Cells(Vec<(String, Style)>),
    /// A line of its own between rows: a group's name.
    Heading(String),
}

pub struct Table {
    columns: Vec<(String, Align)>,
    lines: Vec<Line>,
}

impl Table {
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|(name, align)| (name.to_string(), *align))
                .collect(),
            lines: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.push_styled(row.into_iter().map(|c| (c, Style::Plain)).collect());
    }

    pub fn push_styled(&mut self, row: Vec<(String, Style)>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.lines.push(Line::Cells(row));
    }

    pub fn heading(&mut self, text: String) {
        self.lines.push(Line::Heading(text));
    }

    fn rows(&self) -> impl Iterator<Item = &Vec<(String, Style)>> {
        self.lines.iter().filter_map(|l| match l {
            Line::Cells(cells) => Some(cells),
            Line::Heading(_) => None,
        })
    }

    fn widths(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                self.rows()
                    .map(|r| r[i].0.chars().count())
                    .chain([name.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// Characters in the widest row (headings left out).
    pub fn width(&self) -> usize {
        let widths = self.widths();
        widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)
    }

    /// Removes the column of that header, if there is one.
    pub fn drop_column(&mut self, name: &str) {
        let Some(i) = self.columns.iter().position(|(n, _)| n == name) else {
            return;
        };
        self.columns.remove(i);
        for line in &mut self.lines {
            if let Line::Cells(cells) = line {
                cells.remove(i);
            }
        }
    }

    pub fn render(&self) -> String {
        self.render_painted(Paint::PLAIN)
    }

    pub fn render_painted(&self, paint: Paint) -> String {
        let widths = self.widths();
        let line = |cells: Vec<(&str, Style)>| -> String {
            cells
                .iter()
                .zip(&self.columns)
                .zip(&widths)
                .map(|((&(cell, style), (_, align)), &w)| {
                    let pad = " ".repeat(w.saturating_sub(cell.chars().count()));
                    let text = paint.paint(style, cell);
                    match align {
                        Align::Left => text + &pad,
                        Align::Right => pad + &text,
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut out = line(
            self.columns
                .iter()
                .map(|(n, _)| (n.as_str(), Style::Bold))
                .collect(),
        );
        out.push('\n');
        out.push_str(
            &widths
                .iter()
                .map(|&w| "-".repeat(w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
        for l in &self.lines {
            match l {
                Line::Cells(row) => {
                    out.push_str(&line(row.iter().map(|(c, s)| (c.as_str(), *s)).collect()))
                }
                Line::Heading(text) => out.push_str(&paint.paint(Style::Bold, text)),
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let mut t = Table::new(&[("map", Align::Left), ("ns", Align::Right)]);
        t.push(vec!["array".into(), "5".into()]);
        t.push(vec!["percpu_hash".into(), "1234".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "map            ns");
        assert_eq!(lines[1], "-----------  ----");
        assert_eq!(lines[2], "array           5");
        assert_eq!(lines[3], "percpu_hash  1234");
        assert_eq!(t.width(), 17);
    }

    #[test]
    fn colour_goes_on_after_the_padding() {
        let mut t = Table::new(&[("verdict", Align::Left), ("ns", Align::Right)]);
        t.push_styled(vec![
            ("ok".into(), Style::Green),
            ("5".into(), Style::Plain),
        ]);
        t.heading("streams".into());
        let text = t.render_painted(Paint { colour: true });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "\x1b[1mverdict\x1b[0m  \x1b[1mns\x1b[0m");
        assert_eq!(lines[2], "\x1b[32mok\x1b[0m        5");
        assert_eq!(lines[3], "\x1b[1mstreams\x1b[0m");
        assert!(!t.render().contains('\x1b'));
    }

    #[test]
    fn a_dropped_column_leaves_the_others() {
        let mut t = Table::new(&[("a", Align::Left), ("b", Align::Left)]);
        t.push(vec!["x".into(), "wide value".into()]);
        t.drop_column("b");
        assert_eq!(t.render(), "a\n-\nx\n");
        assert_eq!(t.width(), 1);
    }
}
