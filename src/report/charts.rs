//! The HTML report's charts, drawn with plotters' SVG backend into strings
//! that are inlined in the page.
//!
//! plotters is built without a font feature here, so it cannot measure text;
//! its SVG backend still emits `<text>` elements and lays labels out with a
//! crude width estimate, which the browser renders with its own fonts. That
//! is good enough for axis labels; the horizontal identity chart, whose long
//! names need exact placement, is laid out in pixels directly.

use super::model::{HourlyCount, Report};
use super::{ReportError, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const WIDTH: u32 = 560;
const HEIGHT: u32 = 300;
const FONT: &str = "sans-serif";

fn chart_error<E: std::fmt::Display>(chart: &str) -> impl Fn(E) -> ReportError + '_ {
    move |error| ReportError::Chart {
        chart: chart.to_string(),
        message: error.to_string(),
    }
}

/// A stable colour for an identity kind or a severity.
pub(crate) fn series_color(name: &str) -> RGBColor {
    match name {
        "user" => RGBColor(0x1f, 0x77, 0xb4),
        "service_account" => RGBColor(0xff, 0x7f, 0x0e),
        "node" => RGBColor(0x2c, 0xa0, 0x2c),
        "control_plane" => RGBColor(0x94, 0x67, 0xbd),
        "anonymous" => RGBColor(0xd6, 0x27, 0x28),
        "critical" => RGBColor(0x8b, 0x00, 0x00),
        "high" => RGBColor(0xe0, 0x3c, 0x31),
        "medium" => RGBColor(0xf0, 0xa2, 0x02),
        "low" => RGBColor(0x4a, 0x90, 0xd9),
        "info" => RGBColor(0x9e, 0x9e, 0x9e),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// Hourly stacked bars; `order` fixes the stacking order of known series.
fn stacked_hourly(
    chart_name: &str,
    title: &str,
    y_description: &str,
    counts: &[HourlyCount],
    order: &[&str],
) -> Result<String> {
    let mut series: Vec<String> = order
        .iter()
        .map(|name| name.to_string())
        .filter(|name| counts.iter().any(|count| &count.series == name))
        .collect();
    for count in counts {
        if !series.contains(&count.series) {
            series.push(count.series.clone());
        }
    }
    let mut stacks = vec![vec![0u64; series.len()]; 24];
    for count in counts {
        if let (Some(hour), Some(position)) = (
            stacks.get_mut(count.hour as usize),
            series.iter().position(|name| name == &count.series),
        ) {
            hour[position] += count.count;
        }
    }
    let highest = stacks
        .iter()
        .map(|hour| hour.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let error = chart_error(chart_name);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..24f64, 0u64..(highest + highest / 2 + 1))
            .map_err(&error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(13)
            .y_labels(6)
            .x_label_formatter(&|hour| format!("{:02}", *hour as u32))
            .x_desc("hour (UTC)")
            .y_desc(y_description)
            .axis_desc_style((FONT, 13))
            .label_style((FONT, 12))
            .draw()
            .map_err(&error)?;
        for (position, name) in series.iter().enumerate() {
            let color = series_color(name);
            let bars: Vec<Rectangle<(f64, u64)>> = (0..24usize)
                .filter(|hour| stacks[*hour][position] > 0)
                .map(|hour| {
                    let below: u64 = stacks[hour][..position].iter().sum();
                    let value = stacks[hour][position];
                    Rectangle::new(
                        [
                            (hour as f64 + 0.12, below),
                            (hour as f64 + 0.88, below + value),
                        ],
                        color.filled(),
                    )
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(&error)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font((FONT, 12))
                .draw()
                .map_err(&error)?;
        }
        root.present().map_err(&error)?;
    }
    Ok(svg)
}

pub fn events_by_hour(report: &Report) -> Result<String> {
    stacked_hourly(
        "events per hour",
        "Events per hour by identity kind",
        "events",
        &report.events_by_hour,
        &[
            "user",
            "service_account",
            "node",
            "control_plane",
            "anonymous",
        ],
    )
}

pub fn anomalies_by_hour(report: &Report) -> Result<String> {
    stacked_hourly(
        "anomalies per hour",
        "Anomalies per hour by severity",
        "anomalies",
        &report.anomalies_by_hour,
        &["critical", "high", "medium", "low", "info"],
    )
}

/// Denied requests per hour, with the previous 7 days' hourly mean as a line.
pub fn denied_by_hour(report: &Report) -> Result<String> {
    let chart_name = "denied requests";
    let error = chart_error(chart_name);
    let usual_per_hour = report.denied.previous_daily_average / 24.0;
    let highest = report.denied.by_hour.iter().copied().max().unwrap_or(0) as f64;
    // Head-room above the bars for the legend.
    let top = highest.max(usual_per_hour).max(1.0) * 1.5;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Denied requests per hour", (FONT, 17))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..24f64, 0f64..top)
            .map_err(&error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(13)
            .y_labels((top.ceil() as usize + 1).min(6))
            .x_label_formatter(&|hour| format!("{:02}", *hour as u32))
            .y_label_formatter(&|value| {
                if value.fract().abs() < 1e-9 {
                    format!("{value:.0}")
                } else {
                    format!("{value:.1}")
                }
            })
            .x_desc("hour (UTC)")
            .y_desc("denied requests")
            .axis_desc_style((FONT, 13))
            .label_style((FONT, 12))
            .draw()
            .map_err(&error)?;
        let bar_color = RGBColor(0xd6, 0x27, 0x28);
        chart
            .draw_series(
                report
                    .denied
                    .by_hour
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(|(hour, count)| {
                        Rectangle::new(
                            [
                                (hour as f64 + 0.12, 0.0),
                                (hour as f64 + 0.88, *count as f64),
                            ],
                            bar_color.filled(),
                        )
                    }),
            )
            .map_err(&error)?
            .label("today")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 10, y + 5)], bar_color.filled())
            });
        chart
            .draw_series(LineSeries::new(
                [(0.0, usual_per_hour), (24.0, usual_per_hour)],
                BLACK.stroke_width(2),
            ))
            .map_err(&error)?
            .label("previous 7 days, mean per hour")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT, 12))
            .draw()
            .map_err(&error)?;
        root.present().map_err(&error)?;
    }
    Ok(svg)
}

/// Horizontal bars: requests today and the usual daily mean, per top identity.
pub fn top_identities(report: &Report) -> Result<String> {
    let chart_name = "top identities";
    let error = chart_error(chart_name);
    let identities = &report.identity_activity;
    let row_height = 26i32;
    let label_width = 250i32;
    let width = 2 * WIDTH as i32 + 20;
    let top_margin = 48i32;
    let height = (top_margin + row_height * identities.len().max(1) as i32 + 30) as u32;
    let highest = identities
        .iter()
        .map(|activity| (activity.requests as f64).max(activity.usual_daily_requests))
        .fold(1.0f64, f64::max);
    let bar_span = (width - label_width - 90) as f64;
    let today_color = RGBColor(0x1f, 0x77, 0xb4);
    let usual_color = RGBColor(0xb0, 0xb0, 0xb0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width as u32, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let title = TextStyle::from((FONT, 17).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(
            "Top identities: requests today against their usual day",
            &title,
            (width / 2, 6),
        )
        .map_err(&error)?;
        let legend = TextStyle::from((FONT, 12).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Rectangle::new(
            [(label_width, 30), (label_width + 10, 40)],
            today_color.filled(),
        ))
        .map_err(&error)?;
        root.draw_text("today", &legend, (label_width + 14, 35))
            .map_err(&error)?;
        root.draw(&Rectangle::new(
            [(label_width + 70, 30), (label_width + 80, 40)],
            usual_color.filled(),
        ))
        .map_err(&error)?;
        root.draw_text(
            "mean of the previous 7 days",
            &legend,
            (label_width + 84, 35),
        )
        .map_err(&error)?;
        let name_style = TextStyle::from((FONT, 12).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        let value_style = TextStyle::from((FONT, 11).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        if identities.is_empty() {
            root.draw_text(
                "no requests this day",
                &legend,
                (label_width, top_margin + 12),
            )
            .map_err(&error)?;
        }
        for (row, activity) in identities.iter().enumerate() {
            let y = top_margin + row as i32 * row_height;
            let mut name = activity.identity.clone();
            if name.chars().count() > 38 {
                name = format!("{}…", name.chars().take(37).collect::<String>());
            }
            root.draw_text(
                &name,
                &name_style,
                (label_width - 8, y + row_height / 2 - 2),
            )
            .map_err(&error)?;
            let today = (activity.requests as f64 / highest * bar_span).round() as i32;
            let usual = (activity.usual_daily_requests / highest * bar_span).round() as i32;
            root.draw(&Rectangle::new(
                [(label_width, y + 3), (label_width + today.max(1), y + 12)],
                today_color.filled(),
            ))
            .map_err(&error)?;
            root.draw(&Rectangle::new(
                [(label_width, y + 13), (label_width + usual.max(1), y + 20)],
                usual_color.filled(),
            ))
            .map_err(&error)?;
            let ratio = activity
                .ratio_to_usual
                .map(|ratio| format!(" ({ratio:.1}× usual)"))
                .unwrap_or_else(|| " (no history)".to_string());
            root.draw_text(
                &format!("{}{}", activity.requests, ratio),
                &value_style,
                (label_width + today.max(1) + 6, y + 8),
            )
            .map_err(&error)?;
        }
        root.present().map_err(&error)?;
    }
    Ok(svg)
}
