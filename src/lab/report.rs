//! A drill report an operator can share: the rows of a drill drawn as a timeline, one lane
//! per row — the fault's span, each reporting node's first correct verdict, agreement,
//! isolation, the heal and the return to health — as SVG (drawn with `plotters`), or as an
//! HTML page holding that SVG and a table of the figures.
//!
//! Times are those the drill measured from its own injection (see [`crate::lab::drill`]).
//! Must not: run anything; it only draws results it is given.

use crate::lab::drill::{fmt_duration, RowResult};
use crate::lab::error::{LabError, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::time::Duration;

/// Pixel width of the drawing; the height grows with the rows.
const WIDTH: u32 = 1200;
const LANE_PX: u32 = 56;
const HEADER_PX: u32 = 70;
const AXIS_PX: u32 = 40;
const LABEL_PX: u32 = 330;

/// Which file the report becomes, by extension.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Svg,
    Html,
}

impl ReportFormat {
    /// `.svg` or `.html`/`.htm`; anything else is refused with the reason.
    pub fn of(path: &Path) -> std::result::Result<ReportFormat, String> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("svg") => Ok(ReportFormat::Svg),
            Some("html" | "htm") => Ok(ReportFormat::Html),
            _ => Err(format!(
                "report {}: the name must end in .svg or .html",
                path.display()
            )),
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// When a row ended, as far as it shows: healthy again, else the heal, else the last event.
fn row_end(r: &RowResult) -> Duration {
    let events = r
        .detect
        .values()
        .flatten()
        .chain(&r.agreement)
        .chain(&r.isolation)
        .copied();
    let heal_end = r.heal_started.map(|h| h + r.healed.unwrap_or_default());
    events.chain(heal_end).max().unwrap_or_default()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The lane label of a row: `#4 n2's NIC on A set down — ok`.
pub fn lane_label(r: &RowResult) -> String {
    format!(
        "#{} {} — {}",
        r.number,
        r.title,
        if r.ok() { "ok" } else { "FAIL" }
    )
}

/// Draws `rows` as an SVG document (one lane per row).
pub fn svg(title: &str, rows: &[RowResult]) -> Result<String> {
    let draw_err = |e: String| LabError::Spec(format!("drawing the drill report: {e}"));
    let lanes = rows.len().max(1);
    let height = HEADER_PX + AXIS_PX + LANE_PX * lanes as u32;
    let end = rows
        .iter()
        .map(row_end)
        .max()
        .unwrap_or_default()
        .max(Duration::from_secs(1));
    let x_max = secs(end) * 1.08;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
        let (header, body) = root.split_vertically(HEADER_PX);
        header
            .draw(&Text::new(
                title.to_string(),
                (12, 10),
                ("sans-serif", 26).into_font(),
            ))
            .map_err(|e| draw_err(e.to_string()))?;
        // Legend.
        let legend: [(&str, RGBColor); 5] = [
            ("fault active", RGBColor(245, 166, 35)),
            ("healing", RGBColor(126, 211, 33)),
            ("node's verdict", RGBColor(45, 108, 223)),
            ("agreed", BLACK),
            ("isolated / took over", RGBColor(208, 2, 27)),
        ];
        for (i, (name, color)) in legend.iter().enumerate() {
            let x = 12 + 190 * i as i32;
            header
                .draw(&Rectangle::new([(x, 42), (x + 14, 56)], color.filled()))
                .map_err(|e| draw_err(e.to_string()))?;
            header
                .draw(&Text::new(
                    name.to_string(),
                    (x + 20, 42),
                    ("sans-serif", 16).into_font(),
                ))
                .map_err(|e| draw_err(e.to_string()))?;
        }
        let (labels, plot) = body.split_horizontally(LABEL_PX);
        let mut chart = ChartBuilder::on(&plot)
            .margin_right(20)
            .x_label_area_size(AXIS_PX)
            .build_cartesian_2d(0f64..x_max, 0f64..lanes as f64)
            .map_err(|e| draw_err(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("seconds since the fault was injected")
            .x_label_formatter(&|x| format!("{x:.1}"))
            .draw()
            .map_err(|e| draw_err(e.to_string()))?;
        let (_, y_px) = chart.plotting_area().get_pixel_range();
        let lane_px = f64::from(y_px.end - y_px.start) / lanes as f64;
        for (i, r) in rows.iter().enumerate() {
            // Lane i from the top: y from lanes-i-1 to lanes-i.
            let base = (lanes - i - 1) as f64;
            let band = |from: f64, to: f64, pad: f64| [(from, base + pad), (to, base + 1.0 - pad)];
            let background = if !r.ok() {
                RGBColor(253, 226, 226)
            } else if i % 2 == 0 {
                RGBColor(244, 246, 248)
            } else {
                WHITE
            };
            let fail = |e: DrawingAreaErrorKind<_>| draw_err(e.to_string());
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    band(0.0, x_max, 0.0),
                    background.filled(),
                )))
                .map_err(fail)?;
            if let Some(h) = r.heal_started {
                let h = secs(h);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        band(0.0, h, 0.3),
                        RGBColor(245, 166, 35).mix(0.8).filled(),
                    )))
                    .map_err(fail)?;
                if let Some(d) = r.healed.map(secs) {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            band(h, h + d, 0.3),
                            RGBColor(126, 211, 33).mix(0.8).filled(),
                        )))
                        .map_err(fail)?;
                }
            }
            let mid = base + 0.5;
            for (k, (node, t)) in r.detect.iter().enumerate() {
                let Some(t) = t else { continue };
                // Labels of neighbouring dots alternate above and below the line.
                let dy = if k % 2 == 0 { -20 } else { 6 };
                chart
                    .draw_series([EmptyElement::at((secs(*t), mid))
                        + Circle::new((0, 0), 5, RGBColor(45, 108, 223).filled())
                        + Text::new(node.clone(), (4, dy), ("sans-serif", 14).into_font())])
                    .map_err(fail)?;
            }
            for (t, color, name, dy) in [
                (r.agreement, BLACK, "agreed", -24),
                (r.isolation, RGBColor(208, 2, 27), "isolation", 8),
            ] {
                let Some(t) = t else { continue };
                let t = secs(t);
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(t, base + 0.12), (t, base + 0.88)],
                        color.stroke_width(2),
                    )))
                    .map_err(fail)?;
                chart
                    .draw_series([EmptyElement::at((t, mid))
                        + Text::new(
                            name.to_string(),
                            (-4, dy),
                            ("sans-serif", 13)
                                .into_font()
                                .color(&color)
                                .pos(Pos::new(HPos::Right, VPos::Top)),
                        )])
                    .map_err(fail)?;
            }
            // The lane's label, level with the lane (the label area shares the top edge).
            let top = y_px.start - labels.get_base_pixel().1;
            let y = top + (lane_px * (i as f64 + 0.5)) as i32 - 8;
            labels
                .draw(&Text::new(
                    lane_label(r),
                    (12, y),
                    ("sans-serif", 16)
                        .into_font()
                        .color(if r.ok() { &BLACK } else { &RED }),
                ))
                .map_err(|e| draw_err(e.to_string()))?;
        }
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    Ok(out)
}

/// An HTML page: the SVG timeline and a table of every row's figures.
pub fn html(title: &str, rows: &[RowResult]) -> Result<String> {
    let svg = svg(title, rows)?;
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    h.push_str(&format!("<title>{}</title>\n", escape(title)));
    h.push_str(
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}tr.fail{background:#fde2e2}</style>\n",
    );
    h.push_str("</head>\n<body>\n");
    h.push_str(&format!("<h1>{}</h1>\n", escape(title)));
    // The SVG document minus its XML declaration, inline.
    let body = svg.trim_start();
    let body = match body.strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(rest, |(_, b)| b),
        None => body,
    };
    h.push_str(body.trim());
    h.push_str("\n<table>\n<tr><th>#</th><th>fault</th><th>verdicts</th><th>detected</th><th>agreed</th><th>isolated</th><th>healed</th><th>result</th></tr>\n");
    for r in rows {
        let verdicts: Vec<String> = r
            .verdicts
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        let detect: Vec<String> = r
            .detect
            .iter()
            .map(|(n, d)| format!("{n} {}", fmt_duration(*d)))
            .collect();
        h.push_str(&format!(
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            if r.ok() { "row ok" } else { "row fail" },
            r.number,
            escape(&r.title),
            escape(&verdicts.join("; ")),
            escape(&detect.join(", ")),
            fmt_duration(r.agreement),
            fmt_duration(r.isolation),
            fmt_duration(r.healed),
            if r.ok() {
                "ok".to_string()
            } else {
                escape(&format!("FAIL: {}", r.problems.join("; ")))
            }
        ));
    }
    h.push_str("</table>\n</body>\n</html>\n");
    Ok(h)
}

/// Writes the report of `rows` to `path` (SVG or HTML by extension).
pub fn write(path: &Path, title: &str, rows: &[RowResult]) -> Result<()> {
    let format = ReportFormat::of(path).map_err(LabError::Spec)?;
    let text = match format {
        ReportFormat::Svg => svg(title, rows)?,
        ReportFormat::Html => html(title, rows)?,
    };
    std::fs::write(path, text).map_err(|e| LabError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ms(v: u64) -> Option<Duration> {
        Some(Duration::from_millis(v))
    }

    pub(crate) fn sample() -> Vec<RowResult> {
        let mut rows = Vec::new();
        let mut r = RowResult {
            number: 4,
            title: "n2's NIC on A set down".into(),
            agreement: ms(420),
            heal_started: ms(600),
            healed: ms(900),
            ..RowResult::default()
        };
        r.detect = BTreeMap::from([("n1".into(), ms(380)), ("n2".into(), ms(310))]);
        rows.push(r);
        let mut r = RowResult {
            number: 9,
            title: "n2's NICs on A and B both down".into(),
            agreement: ms(700),
            isolation: ms(900),
            heal_started: ms(1000),
            healed: ms(1500),
            ..RowResult::default()
        };
        r.detect = BTreeMap::from([("n1".into(), ms(650)), ("n2".into(), None)]);
        r.problems
            .push("n2: no cut_off <within 15 s> & more".into());
        rows.push(r);
        rows.push(RowResult {
            number: 1,
            title: "none".into(),
            heal_started: ms(10_000),
            healed: ms(650),
            ..RowResult::default()
        });
        rows
    }

    fn lane_labels(doc: &roxmltree::Document) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .filter(|t| t.starts_with('#'))
            .collect()
    }

    #[test]
    fn svg_report_is_well_formed_with_one_lane_per_row() {
        let rows = sample();
        let svg = svg("hadiag lab drill", &rows).expect("draw");
        std::fs::write(std::env::temp_dir().join("hadiag-report-test.svg"), &svg).ok();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        assert!(doc.root_element().has_tag_name("svg"));
        let labels = lane_labels(&doc);
        assert_eq!(labels.len(), rows.len(), "{labels:?}");
        for r in &rows {
            assert!(labels.contains(&lane_label(r)), "{labels:?}");
        }
    }

    #[test]
    fn html_report_holds_the_svg_and_one_table_row_per_drill_row() {
        let rows = sample();
        let page = html("hadiag lab drill", &rows).expect("draw");
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc =
            roxmltree::Document::parse_with_options(&page, opts).expect("well-formed (X)HTML");
        assert_eq!(
            doc.descendants().filter(|n| n.has_tag_name("svg")).count(),
            1
        );
        let table_rows = doc
            .descendants()
            .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("row ")))
            .count();
        assert_eq!(table_rows, rows.len());
        assert_eq!(lane_labels(&doc).len(), rows.len());
        assert!(page.contains("&lt;within 15 s&gt; &amp; more"), "escaped");
    }

    #[test]
    fn report_names_must_say_svg_or_html() {
        assert_eq!(ReportFormat::of(Path::new("d.SVG")), Ok(ReportFormat::Svg));
        assert_eq!(ReportFormat::of(Path::new("d.htm")), Ok(ReportFormat::Html));
        assert!(ReportFormat::of(Path::new("d.png"))
            .unwrap_err()
            .contains(".svg or .html"));
    }
}
