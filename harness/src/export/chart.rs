//! A report's charts, drawn as SVG with plotters: per cell a dot at the point
//! estimate and whiskers across its 95% interval.
//!
//! Counters and streams get a panel each, each on its own linear axis from
//! zero, rather than one log axis: a stream (ring or perf buffer) costs about
//! a hundred times a counter, so one linear axis puts every counter at zero,
//! while a log axis squeezes the differences that decide a choice (240
//! against 450 ns) into a few pixels and makes lengths lie about ratios.

use std::io;

use bpfstorm_common::{AttachPoint, MapKind, UpdateMode};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use crate::aggregate::{distinct, Interval};
use crate::export::csv::{strategy_name, Variant};

/// One measured cell.
pub struct Item {
    /// The host and kernel, where the report has several; else empty.
    pub machine: String,
    pub backend: String,
    pub attach: AttachPoint,
    pub map: MapKind,
    pub update: UpdateMode,
    pub variant: Variant,
    pub interval: Interval,
}

/// One SVG file of a report.
pub struct Chart {
    pub file: String,
    /// What it shows, for the report's alt text.
    pub alt: String,
    pub svg: String,
}

#[derive(Debug, Error)]
#[error("drawing a chart: {0}")]
pub struct ChartError(#[from] DrawingAreaErrorKind<io::Error>);

/// What tells cells apart, in the order labels name it.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Machine,
    Attach,
    Strategy,
    Backend,
}

impl Item {
    fn part(&self, part: Part) -> String {
        match part {
            Part::Machine => self.machine.clone(),
            Part::Attach => self.attach.to_string(),
            Part::Strategy => strategy_name(self.map, self.update, self.variant),
            Part::Backend => self.backend.clone(),
        }
    }

    fn label(&self, parts: &[Part]) -> String {
        let words: Vec<String> = parts.iter().map(|&p| self.part(p)).collect();
        words.join(" · ")
    }

    fn is_finite(&self) -> bool {
        is_finite(&self.interval)
    }
}

fn is_finite(i: &Interval) -> bool {
    i.point.is_finite() && i.lo.is_finite() && i.hi.is_finite()
}

/// The parts every item shares (they go to the subtitle, once) and those a
/// label needs; a label names the strategy when nothing else tells items apart.
fn naming(items: &[&Item], labelled: &[Part]) -> (Vec<Part>, Vec<Part>) {
    let shared = |p: Part| distinct(items.iter().map(|i| i.part(p))).len() <= 1;
    let all = [Part::Machine, Part::Attach, Part::Strategy, Part::Backend];
    let mut varying: Vec<Part> = labelled.iter().copied().filter(|&p| !shared(p)).collect();
    if varying.is_empty() {
        varying.push(Part::Strategy);
    }
    let common = all
        .into_iter()
        .filter(|&p| shared(p) && !varying.contains(&p))
        .collect();
    (common, varying)
}

/// One line of a panel: marks in fixed slots (one per series).
struct Row {
    label: String,
    marks: Vec<(usize, Interval)>,
}

struct Panel {
    caption: &'static str,
    rows: Vec<Row>,
}

struct Figure {
    title: String,
    /// What every cell shares, said once.
    shared: Vec<String>,
    unit: String,
    /// Legend entries; none for a single series.
    series: Vec<String>,
    slots: usize,
    panels: Vec<Panel>,
}

const COUNTERS: &str = "Counters: the program bumps a count in a map";
const STREAMS: &str = "Streams: the program sends every event to user space";

/// Panels for the items of each family present, counters first.
fn panels(items: &[&Item], row: impl Fn(&[&Item]) -> Vec<Row>) -> Vec<Panel> {
    [(false, COUNTERS), (true, STREAMS)]
        .into_iter()
        .filter_map(|(stream, caption)| {
            let family: Vec<&Item> = items
                .iter()
                .copied()
                .filter(|i| i.map.is_stream() == stream)
                .collect();
            (!family.is_empty()).then(|| Panel {
                caption,
                rows: row(&family),
            })
        })
        .collect()
}

/// The charts of `items` for a report: `<prefix>.svg`, every cell ranked
/// within its family, and where more than one backend ran
/// `<prefix>-by_backend.svg`, each strategy's backends side by side. Items
/// without a finite interval are left out; none at all gives no chart.
pub fn charts(
    prefix: &str,
    title: &str,
    unit: &str,
    items: &[Item],
) -> Result<Vec<Chart>, ChartError> {
    let items: Vec<&Item> = items.iter().filter(|i| i.is_finite()).collect();
    let mut charts = Vec::new();
    if items.is_empty() {
        return Ok(charts);
    }
    let shared = |common: &[Part]| {
        common
            .iter()
            .map(|&p| items[0].part(p))
            .filter(|w| !w.is_empty())
            .collect()
    };

    let (common, varying) = naming(
        &items,
        &[Part::Machine, Part::Attach, Part::Strategy, Part::Backend],
    );
    // Cheapest first: the ranking is what a reader looks for.
    let ranked = |family: &[&Item]| {
        let mut family = family.to_vec();
        family.sort_by(|a, b| a.interval.point.total_cmp(&b.interval.point));
        family
            .iter()
            .map(|i| Row {
                label: i.label(&varying),
                marks: vec![(0, i.interval)],
            })
            .collect()
    };
    charts.push(Chart {
        file: format!("{prefix}.svg"),
        alt: unit.to_string(),
        svg: draw(&Figure {
            title: title.to_string(),
            shared: shared(&common),
            unit: unit.to_string(),
            series: Vec::new(),
            slots: 1,
            panels: panels(&items, ranked),
        })?,
    });

    let backends = distinct(items.iter().map(|i| i.backend.clone()));
    if backends.len() > 1 {
        let (common, varying) = naming(&items, &[Part::Machine, Part::Attach, Part::Strategy]);
        // In the order the run measured them, so the panels read like its table.
        let grouped = |family: &[&Item]| {
            distinct(family.iter().map(|i| i.label(&varying)))
                .into_iter()
                .map(|label| {
                    let marks = family
                        .iter()
                        .filter(|i| i.label(&varying) == label)
                        .filter_map(|i| {
                            let slot = backends.iter().position(|b| *b == i.backend)?;
                            Some((slot, i.interval))
                        })
                        .collect();
                    Row { label, marks }
                })
                .collect()
        };
        let title = format!("{title}, by backend");
        charts.push(Chart {
            file: format!("{prefix}-by_backend.svg"),
            alt: format!("{unit} by backend"),
            svg: draw(&Figure {
                title,
                shared: shared(&common),
                unit: unit.to_string(),
                series: backends.clone(),
                slots: backends.len(),
                panels: panels(&items, grouped),
            })?,
        });
    }
    Ok(charts)
}

// Sizes in pixels. Text widths are estimated (an SVG has no font metrics),
// generously, so that labels stay inside the picture in wide fonts too.
const MARGIN: u32 = 16;
const TITLE_PX: f64 = 16.0;
const TEXT_PX: f64 = 12.0;
const SMALL_PX: f64 = 11.0;
const LINE: u32 = 22;
const CAPTION_H: u32 = 28;
const AXIS_H: u32 = 48;
const SLOT_H: u32 = 16;
const ROW_PAD: u32 = 10;
const PLOT_W: u32 = 520;
const VALUE_GAP: f64 = 6.0;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
const INK: RGBColor = RGBColor(33, 33, 33);
const GREY: RGBColor = RGBColor(110, 110, 110);
const BAND: RGBColor = RGBColor(244, 246, 250);

fn text_width(text: &str, px: f64) -> f64 {
    text.chars().count() as f64 * px * 0.62
}

/// plotters writes `font-size` as the size given / 1.24.
fn font(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24).into_font().color(&INK)
}

fn bold(px: f64) -> TextStyle<'static> {
    ("sans-serif", px * 1.24, FontStyle::Bold)
        .into_font()
        .color(&INK)
}

fn color(series: usize) -> RGBColor {
    PALETTE[series % PALETTE.len()]
}

/// `v` with thousands separated; one decimal below 10, unless whole.
fn number(v: f64) -> String {
    let digits = if v.abs() >= 10.0 || v.fract() == 0.0 {
        0
    } else {
        1
    };
    let text = format!("{v:.digits$}");
    let (sign, text) = text.split_at(usize::from(text.starts_with('-')));
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut out = sign.to_string();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// A panel's x axis: from zero (or the lowest estimate, below it) to just
/// past the longest whisker and the value printed after it. Whiskers are cut
/// at zero and at twice the highest estimate, and drawn with an arrow there:
/// a t-interval over two or three repetitions can be ten times its estimate
/// and would flatten every other cell, and no cost is below zero.
struct Axis {
    start: f64,
    end: f64,
    cut: f64,
}

impl Axis {
    fn of(panel: &Panel) -> Axis {
        let marks = || {
            panel
                .rows
                .iter()
                .flat_map(|r| r.marks.iter().map(|(_, i)| i))
        };
        let start = marks().map(|i| i.point).fold(0.0, f64::min);
        let top = marks().map(|i| i.point).fold(start, f64::max);
        let cut = if top > start {
            start + 2.0 * (top - start)
        } else {
            start + 1.0
        };
        let plot = f64::from(PLOT_W);
        let end = marks()
            .map(|i| {
                let label = text_width(&number(i.point), SMALL_PX) + 2.0 * VALUE_GAP;
                start + (i.hi.clamp(start, cut) - start) / (1.0 - label / plot)
            })
            .fold(f64::MIN, f64::max);
        let end = if end > start { end } else { cut };
        Axis { start, end, cut }
    }

    /// Where `v` is drawn, and whether it was cut to get there.
    fn clip(&self, v: f64) -> (f64, bool) {
        let drawn = v.clamp(self.start, self.cut);
        (drawn, drawn != v)
    }

    fn cuts(&self, panel: &Panel) -> bool {
        panel
            .rows
            .iter()
            .flat_map(|r| &r.marks)
            .any(|(_, i)| self.clip(i.lo).1 || self.clip(i.hi).1)
    }
}

fn draw(fig: &Figure) -> Result<String, ChartError> {
    let label_w = fig
        .panels
        .iter()
        .flat_map(|p| &p.rows)
        .map(|r| text_width(&r.label, TEXT_PX))
        .fold(0.0, f64::max)
        .ceil() as u32
        + 2 * MARGIN;
    let row_h = fig.slots as u32 * SLOT_H + ROW_PAD;
    let legend_h = if fig.series.is_empty() { 0 } else { LINE };
    let header_h = MARGIN + 2 * LINE + legend_h;
    let panel_h = |p: &Panel| CAPTION_H + p.rows.len() as u32 * row_h + AXIS_H;
    let axes: Vec<Axis> = fig.panels.iter().map(Axis::of).collect();
    let cut = axes.iter().zip(&fig.panels).any(|(a, p)| a.cuts(p));
    let subtitle = fig
        .shared
        .iter()
        .map(String::as_str)
        .chain(["dot: estimate, whiskers: 95% interval"])
        .chain(cut.then_some("arrow: the interval runs on past the axis"))
        .collect::<Vec<_>>()
        .join(" · ");
    let widest_text = [
        text_width(&fig.title, TITLE_PX * 1.1),
        text_width(&subtitle, TEXT_PX),
        text_width(COUNTERS, TEXT_PX * 1.1),
        text_width(STREAMS, TEXT_PX * 1.1),
    ]
    .into_iter()
    .fold(0.0, f64::max)
    .ceil() as u32;
    let width = (label_w + PLOT_W + 2 * MARGIN).max(widest_text + 2 * MARGIN);
    let height = header_h + fig.panels.iter().map(panel_h).sum::<u32>() + MARGIN;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let left = |px: f64| font(px).pos(Pos::new(HPos::Left, VPos::Center));
        let m = MARGIN as i32;
        let line = LINE as i32;
        root.draw(&Text::new(
            fig.title.as_str(),
            (m, m + line / 2),
            bold(TITLE_PX).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        root.draw(&Text::new(
            subtitle.as_str(),
            (m, m + line * 3 / 2),
            left(TEXT_PX).color(&GREY),
        ))?;
        let mut x = m;
        for (s, name) in fig.series.iter().enumerate() {
            let y = m + line * 5 / 2;
            root.draw(&Circle::new((x + 5, y), 5, color(s).filled()))?;
            root.draw(&Text::new(name.as_str(), (x + 14, y), left(TEXT_PX)))?;
            x += 14 + text_width(name, TEXT_PX) as i32 + 2 * m;
        }
        let (_, mut rest) = root.split_vertically(header_h);
        for (panel, axis) in fig.panels.iter().zip(&axes) {
            let (area, below) = rest.split_vertically(panel_h(panel));
            rest = below;
            draw_panel(&area, fig, panel, axis, label_w, row_h)?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    fig: &Figure,
    panel: &Panel,
    axis: &Axis,
    label_w: u32,
    row_h: u32,
) -> Result<(), ChartError> {
    let (caption, area) = area.split_vertically(CAPTION_H);
    caption.draw(&Text::new(
        panel.caption,
        (MARGIN as i32, CAPTION_H as i32 / 2),
        bold(TEXT_PX * 1.1).pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    let (start, end) = (axis.start, axis.end);
    let rows = panel.rows.len();
    let mut chart = ChartBuilder::on(&area)
        .x_label_area_size(AXIS_H)
        .y_label_area_size(label_w)
        // Room for half a tick label at the axis end.
        .margin_right(2 * MARGIN)
        .build_cartesian_2d(start..end, 0.0..rows as f64)?;
    // Row r (from the top) spans [rows - r - 1, rows - r]; slot s sits in it
    // from the top down, half a pad below the row above.
    let slot_y = |r: usize, slot: usize| {
        let from_top = f64::from(ROW_PAD) / 2.0 + f64::from(SLOT_H) * (slot as f64 + 0.5);
        (rows - r) as f64 - from_top / f64::from(row_h)
    };
    chart.draw_series(
        panel
            .rows
            .iter()
            .enumerate()
            .filter(|(r, _)| r % 2 == 1)
            .map(|(r, _)| {
                let top = (rows - r) as f64;
                Rectangle::new([(start, top), (end, top - 1.0)], BAND.filled())
            }),
    )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(6)
        .x_max_light_lines(0)
        .bold_line_style(RGBColor(215, 215, 215))
        .axis_style(GREY)
        .x_label_formatter(&|v| number(*v))
        .x_label_style(font(SMALL_PX))
        .x_desc(fig.unit.as_str())
        .axis_desc_style(font(TEXT_PX))
        .draw()?;
    // Marks and labels are drawn in pixels, on the panel's area.
    let (base_x, base_y) = area.get_base_pixel();
    let at = |x: f64, y: f64| {
        let (x, y) = chart.backend_coord(&(x, y));
        (x - base_x, y - base_y)
    };
    for (r, row) in panel.rows.iter().enumerate() {
        let (x, y) = at(start, (rows - r) as f64 - 0.5);
        area.draw(&Text::new(
            row.label.as_str(),
            (x - MARGIN as i32 / 2, y),
            font(TEXT_PX).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        for &(slot, i) in &row.marks {
            let c = color(slot);
            let line = c.stroke_width(2);
            let (lo, lo_cut) = axis.clip(i.lo);
            let (hi, hi_cut) = axis.clip(i.hi);
            let y = slot_y(r, slot);
            let ((x_lo, y), (x_hi, _), (x_point, _)) = (at(lo, y), at(hi, y), at(i.point, y));
            area.draw(&PathElement::new([(x_lo, y), (x_hi, y)], line))?;
            // A cap ends a whisker; an arrow (tip at the cut) goes on.
            for (x, cut, inward) in [(x_lo, lo_cut, 1), (x_hi, hi_cut, -1)] {
                if cut {
                    let base = x + inward * 8;
                    area.draw(&Polygon::new(
                        [(x, y), (base, y - 5), (base, y + 5)],
                        c.filled(),
                    ))?;
                } else {
                    area.draw(&PathElement::new([(x, y - 5), (x, y + 5)], line))?;
                }
            }
            area.draw(&Circle::new((x_point, y), 4, c.filled()))?;
            area.draw(&Text::new(
                number(i.point),
                (x_hi + VALUE_GAP as i32, y),
                font(SMALL_PX)
                    .color(&c)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
    }
    Ok(())
}

/// One strategy's ns/event at each worker count (ascending).
pub struct Curve {
    pub label: String,
    pub points: Vec<(u32, Interval)>,
}

const PLOT_H: u32 = 300;
/// Pixels between the dots of neighbouring curves at one worker count, so
/// that whiskers that overlap in value stay apart.
const DODGE: f64 = 4.0;
/// Steps of the contention chart's x axis per doubling of workers.
const STEPS: f64 = 1000.0;

/// `<prefix>-contention.svg`: each curve's ns/event against workers, with
/// whiskers across each 95% interval; `cpus` marks where workers start to
/// share CPUs. `None` without any curve of two finite points.
pub fn contention(
    prefix: &str,
    title: &str,
    unit: &str,
    cpus: u32,
    curves: &[Curve],
) -> Result<Option<Chart>, ChartError> {
    // Zero workers has no place on a log axis.
    let curves: Vec<(&str, Vec<(u32, Interval)>)> = curves
        .iter()
        .map(|c| {
            let mut points: Vec<(u32, Interval)> = c
                .points
                .iter()
                .copied()
                .filter(|&(w, i)| w > 0 && is_finite(&i))
                .collect();
            points.sort_by_key(|&(w, _)| w);
            (c.label.as_str(), points)
        })
        .filter(|(_, points)| points.len() >= 2)
        .collect();
    let mut workers: Vec<u32> = curves
        .iter()
        .flat_map(|(_, points)| points.iter().map(|&(w, _)| w))
        .collect();
    workers.sort_unstable();
    workers.dedup();
    let (Some(&first), Some(&last)) = (workers.first(), workers.last()) else {
        return Ok(None);
    };
    if first == last {
        return Ok(None);
    }

    // In thousandths of a doubling: plotters formats tick labels at chosen
    // points on integer axes only.
    let log = |w: u32| (f64::from(w).log2() * STEPS).round() as i32;
    // Room beside the outer dots for their dodge and tick labels.
    let pad = (log(last) - log(first)) * 6 / 100;
    let (x_start, x_end) = (log(first) - pad, log(last) + pad);
    let intervals = || curves.iter().flat_map(|(_, p)| p.iter().map(|(_, i)| i));
    // From zero, or the lowest estimate below it, as in the other charts.
    let y_start = intervals().map(|i| i.point).fold(0.0, f64::min);
    let top = intervals()
        .map(|i| i.hi.max(i.point))
        .fold(y_start, f64::max);
    let y_end = if top > y_start {
        top + (top - y_start) * 0.08
    } else {
        y_start + 1.0
    };
    let marks_cpus = (first..=last).contains(&cpus);

    let subtitle = [
        "dot: estimate, whiskers: 95% interval",
        "workers on a log scale",
    ]
    .into_iter()
    .chain(marks_cpus.then_some("dashed: as many workers as CPUs"))
    .collect::<Vec<_>>()
    .join(" · ");
    // The rotated caption, the tick labels, and room for the ticks and a digit
    // more than the top value has (a tick such as 7.5 below a top of 11).
    let y_label_w = LINE + text_width(&number(y_end), SMALL_PX).ceil() as u32 + 2 * MARGIN;
    let swatch_w = 28;
    let widest_text = curves
        .iter()
        .map(|(label, _)| text_width(label, TEXT_PX) + f64::from(swatch_w))
        .chain([
            text_width(title, TITLE_PX * 1.1),
            text_width(&subtitle, TEXT_PX),
        ])
        .fold(0.0, f64::max)
        .ceil() as u32;
    let plot_h = PLOT_H.max(text_width(unit, TEXT_PX).ceil() as u32 + 2 * MARGIN);
    let width = (MARGIN + y_label_w + PLOT_W + 2 * MARGIN).max(widest_text + 2 * MARGIN);
    // Title, subtitle and a line for the CPUs label over the plot.
    let header_h = MARGIN + 3 * LINE;
    let legend_top = header_h + plot_h + AXIS_H + LINE / 2;
    let height = legend_top + curves.len() as u32 * LINE + MARGIN;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let left = |px: f64| font(px).pos(Pos::new(HPos::Left, VPos::Center));
        let m = MARGIN as i32;
        let line = LINE as i32;
        root.draw(&Text::new(
            title,
            (m, m + line / 2),
            bold(TITLE_PX).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        root.draw(&Text::new(
            subtitle.as_str(),
            (m, m + line * 3 / 2),
            left(TEXT_PX).color(&GREY),
        ))?;

        let area = root.margin(
            header_h,
            height - header_h - plot_h - AXIS_H,
            MARGIN,
            2 * MARGIN,
        );
        let ticks: Vec<i32> = workers.iter().map(|&w| log(w)).collect();
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(AXIS_H)
            .y_label_area_size(y_label_w)
            .build_cartesian_2d((x_start..x_end).with_key_points(ticks), y_start..y_end)?;
        chart
            .configure_mesh()
            .y_labels(6)
            .max_light_lines(0)
            .bold_line_style(RGBColor(215, 215, 215))
            .axis_style(GREY)
            .x_label_formatter(&|v| format!("{}", (f64::from(*v) / STEPS).exp2().round()))
            .y_label_formatter(&|v| number(*v))
            .label_style(font(SMALL_PX))
            .x_desc("workers")
            .y_desc(unit)
            .axis_desc_style(font(TEXT_PX))
            .draw()?;

        // Marks are drawn in pixels, on the whole picture.
        let at = |w: u32, v: f64| chart.backend_coord(&(log(w), v));
        if marks_cpus {
            let (x, y_top) = at(cpus, y_end);
            let (_, y_bottom) = at(cpus, y_start);
            root.draw(&DashedPathElement::new(
                [(x, y_top), (x, y_bottom)],
                6,
                4,
                GREY.stroke_width(1),
            ))?;
            root.draw(&Text::new(
                format!("{cpus} CPUs"),
                (x, y_top - line / 2),
                font(SMALL_PX)
                    .color(&GREY)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))?;
        }
        let n = curves.len() as f64;
        for (k, (_, points)) in curves.iter().enumerate() {
            let c = color(k);
            let dodge = ((k as f64 - (n - 1.0) / 2.0) * DODGE).round() as i32;
            let dots: Vec<(i32, i32)> = points
                .iter()
                .map(|&(w, i)| {
                    let (x, y) = at(w, i.point);
                    (x + dodge, y)
                })
                .collect();
            root.draw(&PathElement::new(dots.clone(), c.stroke_width(2)))?;
            for (&(w, i), &(x, y)) in points.iter().zip(&dots) {
                let (_, y_lo) = at(w, i.lo.max(y_start));
                let (_, y_hi) = at(w, i.hi);
                root.draw(&PathElement::new([(x, y_lo), (x, y_hi)], c.stroke_width(1)))?;
                // No cap where the whisker runs on below the axis.
                let caps = [(i.lo >= y_start).then_some(y_lo), Some(y_hi)];
                for cap in caps.into_iter().flatten() {
                    root.draw(&PathElement::new(
                        [(x - 3, cap), (x + 3, cap)],
                        c.stroke_width(1),
                    ))?;
                }
                root.draw(&Circle::new((x, y), 4, c.filled()))?;
            }
        }

        for (k, (label, _)) in curves.iter().enumerate() {
            let c = color(k);
            let y = (legend_top + LINE / 2) as i32 + k as i32 * line;
            root.draw(&PathElement::new([(m, y), (m + 20, y)], c.stroke_width(2)))?;
            root.draw(&Circle::new((m + 10, y), 4, c.filled()))?;
            root.draw(&Text::new(*label, (m + swatch_w, y), left(TEXT_PX)))?;
        }
        root.present()?;
    }
    Ok(Some(Chart {
        file: format!("{prefix}-contention.svg"),
        alt: format!("{unit} by workers"),
        svg,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn item(backend: &str, map: MapKind, update: UpdateMode, point: f64) -> Item {
        Item {
            machine: String::new(),
            backend: backend.into(),
            attach: AttachPoint::TpSysEnterExecve,
            map,
            update,
            variant: Variant::CLASSIC,
            interval: Interval {
                point,
                lo: point * 0.8,
                hi: point * 1.25,
            },
        }
    }

    fn two_backends() -> Vec<Item> {
        let mut items = Vec::new();
        for backend in ["libbpf", "c<&>"] {
            items.push(item(backend, MapKind::Array, UpdateMode::Atomic, 335.0));
            items.push(item(
                backend,
                MapKind::PercpuArray,
                UpdateMode::Percpu,
                239.0,
            ));
            items.push(item(
                backend,
                MapKind::Ringbuf,
                UpdateMode::Stream,
                33_526.0,
            ));
        }
        items
    }

    /// Each `<text>`'s attributes and its content, unescaped.
    fn texts(svg: &str) -> Vec<(HashMap<String, String>, String)> {
        svg.split("<text ")
            .skip(1)
            .map(|rest| {
                let (attrs, rest) = rest.split_once('>').unwrap();
                let content = rest.split_once("</text>").unwrap().0.trim();
                let attrs = attrs
                    .split("\" ")
                    .filter_map(|kv| kv.trim().split_once("=\""))
                    .map(|(k, v)| (k.to_string(), v.trim_end_matches('"').to_string()))
                    .collect();
                let content = content
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&");
                (attrs, content)
            })
            .collect()
    }

    /// Asserts that every text lies inside a `width` x `height` picture,
    /// at its estimated width.
    fn assert_inside<'a>(
        texts: impl Iterator<Item = &'a (HashMap<String, String>, String)>,
        width: f64,
        height: f64,
    ) {
        for (attrs, content) in texts {
            let number = |k: &str| attrs[k].parse::<f64>().unwrap();
            let (x, y, size) = (number("x"), number("y"), number("font-size"));
            let w = content.chars().count() as f64 * size * 0.62;
            let (from, to) = match attrs["text-anchor"].as_str() {
                "start" => (x, x + w),
                "end" => (x - w, x),
                _ => (x - w / 2.0, x + w / 2.0),
            };
            assert!(
                from >= 0.0 && to <= width,
                "{content:?} spans x {from}..{to} of {width}"
            );
            assert!(
                y - size >= 0.0 && y + size <= height,
                "{content:?} at y {y} of {height}"
            );
        }
    }

    /// The chart's width and height, from its viewBox.
    fn view_box(svg: &str) -> (f64, f64) {
        let view = svg.split("viewBox=\"").nth(1).unwrap();
        let numbers: Vec<f64> = view
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|n| n.parse().unwrap())
            .collect();
        (numbers[2], numbers[3])
    }

    #[test]
    fn every_label_is_drawn_once_and_inside_the_picture() {
        let charts = charts(
            "run-ns_per_event",
            "Cost (run)",
            "ns per event",
            &two_backends(),
        )
        .unwrap();
        let files: Vec<&str> = charts.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(
            files,
            ["run-ns_per_event.svg", "run-ns_per_event-by_backend.svg"]
        );
        for chart in &charts {
            let svg = &chart.svg;
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
            let (width, height) = view_box(svg);
            let texts = texts(svg);
            let words: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
            for expected in [
                "array/atomic",
                "percpu_array/percpu",
                "ringbuf/stream",
                COUNTERS,
                STREAMS,
                "ns per event",
                "33,526",
            ] {
                assert!(
                    words.iter().any(|w| w.contains(expected)),
                    "{expected} missing from {words:?}"
                );
            }
            // Shared by every cell: said once, in the subtitle.
            assert_eq!(
                words
                    .iter()
                    .filter(|w| w.contains("tp_sys_enter_execve"))
                    .count(),
                1
            );
            assert_inside(texts.iter(), width, height);
        }
        let by_backend = texts(&charts[1].svg);
        // The legend names the backends; the labels do not repeat them.
        assert_eq!(by_backend.iter().filter(|(_, t)| t == "c<&>").count(), 1);
        assert!(charts[1].svg.contains("c&lt;&amp;&gt;"));
    }

    #[test]
    fn one_backend_gives_one_chart_and_labels_without_it() {
        let items: Vec<Item> = two_backends()
            .into_iter()
            .filter(|i| i.backend == "libbpf")
            .collect();
        let charts = charts("x", "t", "ns", &items).unwrap();
        assert_eq!(charts.len(), 1);
        let texts = texts(&charts[0].svg);
        assert_eq!(
            texts.iter().filter(|(_, t)| t.contains("libbpf")).count(),
            1
        );
        assert!(texts.iter().any(|(_, t)| t == "array/atomic"));
    }

    fn panel(intervals: &[(f64, f64, f64)]) -> Panel {
        Panel {
            caption: COUNTERS,
            rows: intervals
                .iter()
                .map(|&(lo, point, hi)| Row {
                    label: "a".into(),
                    marks: vec![(0, Interval { point, lo, hi })],
                })
                .collect(),
        }
    }

    #[test]
    fn the_axis_ends_just_past_the_widest_whisker_and_its_value() {
        let axis = Axis::of(&panel(&[(300.0, 400.0, 500.0), (100.0, 200.0, 300.0)]));
        assert_eq!(axis.start, 0.0);
        assert!(axis.end > 500.0 && axis.end < 560.0, "{}", axis.end);
        assert!(!axis.cuts(&panel(&[(300.0, 400.0, 500.0)])));
    }

    #[test]
    fn whiskers_are_cut_at_zero_and_twice_the_highest_estimate() {
        let wild = panel(&[(-3800.0, 623.0, 4900.0), (250.0, 300.0, 350.0)]);
        let axis = Axis::of(&wild);
        assert_eq!(axis.start, 0.0);
        assert_eq!(axis.clip(-3800.0), (0.0, true));
        assert_eq!(axis.clip(4900.0), (1246.0, true));
        assert_eq!(axis.clip(350.0), (350.0, false));
        assert!(axis.end > 1246.0 && axis.end < 1400.0, "{}", axis.end);
        assert!(axis.cuts(&wild));
    }

    #[test]
    fn cells_without_a_finite_interval_draw_no_chart() {
        let mut nan = item("libbpf", MapKind::Array, UpdateMode::Atomic, 1.0);
        nan.interval.hi = f64::NAN;
        assert!(charts("x", "t", "ns", &[nan]).unwrap().is_empty());
    }

    fn curve(label: &str, points: &[(u32, f64)]) -> Curve {
        Curve {
            label: label.into(),
            points: points
                .iter()
                .map(|&(w, point)| {
                    let (lo, hi) = (point * 0.8, point * 1.25);
                    (w, Interval { point, lo, hi })
                })
                .collect(),
        }
    }

    const LONG: &str = "libbpf tp_sys_enter_execve percpu_array/percpu";

    #[test]
    fn contention_draws_each_curve_its_workers_and_the_cpus() {
        let curves = [
            curve("array/atomic", &[(1, 300.0), (2, 900.0), (4, 2_400.0)]),
            curve(LONG, &[(1, 240.0), (2, 245.0), (4, 250.0)]),
        ];
        let chart = contention(
            "run",
            "Contention (run)",
            "ns/event, 95% interval",
            2,
            &curves,
        )
        .unwrap()
        .expect("two curves of three points draw a chart");
        assert_eq!(chart.file, "run-contention.svg");
        assert_eq!(chart.alt, "ns/event, 95% interval by workers");
        let svg = &chart.svg;
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let (width, height) = view_box(svg);
        let texts = texts(svg);
        let words: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
        for expected in ["array/atomic", LONG, "1", "2", "4", "workers", "2 CPUs"] {
            assert!(
                words.contains(&expected),
                "{expected} missing from {words:?}"
            );
        }
        assert!(words.iter().any(|w| w.contains("ns/event, 95% interval")));
        // Only the worker counts measured are ticks on the x axis.
        assert!(!words.contains(&"3"), "{words:?}");
        let horizontal = texts.iter().filter(|(a, _)| !a.contains_key("transform"));
        assert_inside(horizontal, width, height);
    }

    #[test]
    fn contention_needs_two_worker_counts() {
        let single = [curve("a", &[(4, 100.0)]), curve("b", &[(8, 200.0)])];
        assert!(contention("x", "t", "ns", 8, &single).unwrap().is_none());
        let same = [curve("a", &[(4, 100.0), (4, 120.0)])];
        assert!(contention("x", "t", "ns", 8, &same).unwrap().is_none());
        assert!(contention("x", "t", "ns", 8, &[]).unwrap().is_none());
    }

    #[test]
    fn contention_leaves_out_points_that_are_not_finite() {
        let mut gap = curve("gap", &[(1, 100.0), (2, 150.0), (4, 200.0)]);
        gap.points[1].1.hi = f64::NAN;
        let curves = [
            gap,
            curve("whole", &[(1, 90.0), (2, 95.0), (4, 99.0)]),
            curve("lone", &[(1, 80.0), (2, f64::NAN)]),
        ];
        let chart = contention("x", "t", "ns", 64, &curves).unwrap().unwrap();
        let texts = texts(&chart.svg);
        let words: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
        assert!(words.contains(&"gap") && words.contains(&"whole"));
        // One finite point is no curve; 64 CPUs lie past the axis.
        assert!(!words.contains(&"lone") && !words.iter().any(|w| w.contains("CPUs")));
        // Two dots of "gap", three of "whole", one per legend entry.
        assert_eq!(chart.svg.matches("<circle").count(), 2 + 3 + 2);
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(number(33_526.4), "33,526");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(-1500.0), "-1,500");
    }
}
