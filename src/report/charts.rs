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

/// The series legend, in a framed box at `position`.
fn draw_legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
    chart_name: &str,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
        .map_err(chart_error(chart_name))
}

/// A colour per position for series without a fixed colour (detectors,
/// identities): the first eight are distinct, then they repeat.
fn palette_color(index: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0xd6, 0x27, 0x28),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0xe3, 0x77, 0xc2),
        RGBColor(0x17, 0xbe, 0xcf),
    ];
    PALETTE[index % PALETTE.len()]
}

/// One bar segment: the bucket (hour, day...) it belongs to, its series and its value.
struct Segment<'a> {
    bucket: usize,
    series: &'a str,
    value: u64,
}

/// What a stacked bar chart shows besides its segments.
struct StackedBars<'a> {
    chart_name: &'a str,
    title: &'a str,
    x_description: &'a str,
    y_description: &'a str,
    buckets: usize,
    /// Tick labels wanted on the x axis (plotters picks round positions).
    x_labels: usize,
    /// The label at the start of bucket `i` (`i == buckets` closes the axis).
    bucket_label: &'a dyn Fn(usize) -> String,
    /// Known series, bottom first; others follow in order of appearance.
    order: &'a [&'a str],
    color: &'a dyn Fn(usize, &str) -> RGBColor,
}

/// Stacked bars, one per bucket.
fn stacked_bars(chart: &StackedBars<'_>, segments: &[Segment<'_>]) -> Result<String> {
    let mut series: Vec<&str> = chart
        .order
        .iter()
        .copied()
        .filter(|name| segments.iter().any(|segment| segment.series == *name))
        .collect();
    for segment in segments {
        if !series.contains(&segment.series) {
            series.push(segment.series);
        }
    }
    let buckets = chart.buckets.max(1);
    let mut stacks = vec![vec![0u64; series.len()]; buckets];
    for segment in segments {
        if let (Some(bucket), Some(position)) = (
            stacks.get_mut(segment.bucket),
            series.iter().position(|name| *name == segment.series),
        ) {
            bucket[position] += segment.value;
        }
    }
    let highest = stacks
        .iter()
        .map(|bucket| bucket.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let error = chart_error(chart.chart_name);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        let mut plot = ChartBuilder::on(&root)
            .caption(chart.title, (FONT, 17))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..buckets as f64, 0u64..(highest + highest / 2 + 1))
            .map_err(&error)?;
        let label = chart.bucket_label;
        plot.configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(chart.x_labels)
            .y_labels(6)
            .x_label_formatter(&|position| label(position.max(0.0) as usize))
            .x_desc(chart.x_description)
            .y_desc(chart.y_description)
            .axis_desc_style((FONT, 13))
            .label_style((FONT, 12))
            .draw()
            .map_err(&error)?;
        for (position, name) in series.iter().enumerate() {
            let color = (chart.color)(position, name);
            let bars: Vec<Rectangle<(f64, u64)>> = (0..buckets)
                .filter(|bucket| stacks[*bucket][position] > 0)
                .map(|bucket| {
                    let below: u64 = stacks[bucket][..position].iter().sum();
                    let value = stacks[bucket][position];
                    Rectangle::new(
                        [
                            (bucket as f64 + 0.12, below),
                            (bucket as f64 + 0.88, below + value),
                        ],
                        color.filled(),
                    )
                })
                .collect();
            plot.draw_series(bars)
                .map_err(&error)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if !series.is_empty() {
            draw_legend(&mut plot, SeriesLabelPosition::UpperLeft, chart.chart_name)?;
        }
        root.present().map_err(&error)?;
    }
    Ok(svg)
}

/// Hourly stacked bars; `order` fixes the stacking order of known series.
fn stacked_hourly(
    chart_name: &str,
    title: &str,
    y_description: &str,
    counts: &[HourlyCount],
    order: &[&str],
) -> Result<String> {
    let segments: Vec<Segment<'_>> = counts
        .iter()
        .map(|count| Segment {
            bucket: count.hour as usize,
            series: &count.series,
            value: count.count,
        })
        .collect();
    stacked_bars(
        &StackedBars {
            chart_name,
            title,
            x_description: "hour (UTC)",
            y_description,
            buckets: 24,
            x_labels: 13,
            bucket_label: &|hour| format!("{hour:02}"),
            order,
            color: &|_, name| series_color(name),
        },
        &segments,
    )
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
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, chart_name)?;
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

/// Alerting anomalies per day and detector over the feedback trend (8 days
/// ending with the report's day), with what suppressions marked stacked on
/// top in grey.
pub fn alerts_per_day(
    section: &crate::feedback::report::FeedbackSection,
    date: chrono::NaiveDate,
) -> Result<String> {
    const SUPPRESSED: &str = "suppressed (all detectors)";
    let days = crate::feedback::report::TREND_DAYS.max(1) as usize;
    let first = date - chrono::Duration::days(days as i64 - 1);
    let bucket = |day: chrono::NaiveDate| (day - first).num_days();
    let mut totals: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for entry in &section.alerts_per_day {
        *totals.entry(entry.detector.as_str()).or_default() += entry.alerting;
    }
    let mut order: Vec<&str> = totals.keys().copied().collect();
    order.sort_by_key(|detector| std::cmp::Reverse(totals[detector]));
    order.push(SUPPRESSED);
    let mut segments = Vec::new();
    for entry in &section.alerts_per_day {
        let Ok(index) = usize::try_from(bucket(entry.date)) else {
            continue;
        };
        segments.push(Segment {
            bucket: index,
            series: &entry.detector,
            value: entry.alerting,
        });
        segments.push(Segment {
            bucket: index,
            series: SUPPRESSED,
            value: entry.suppressed,
        });
    }
    segments.retain(|segment| segment.value > 0);
    let label = |index: usize| {
        if index < days {
            (first + chrono::Duration::days(index as i64))
                .format("%m-%d")
                .to_string()
        } else {
            String::new()
        }
    };
    stacked_bars(
        &StackedBars {
            chart_name: "alerts per day",
            title: "Alerts per day by detector",
            x_description: "day (UTC)",
            y_description: "anomalies",
            buckets: days,
            x_labels: days + 1,
            bucket_label: &label,
            order: &order,
            color: &|position, name| {
                if name == SUPPRESSED {
                    RGBColor(0xbd, 0xbd, 0xbd)
                } else {
                    palette_color(position)
                }
            },
        },
        &segments,
    )
}

/// Identities drawn in the over-privilege chart (the report's order: most
/// unused rules first).
const OVER_PRIVILEGE_LINES: usize = 8;

/// The over-privilege score (rules used in the trailing 7 days / rules held)
/// per identity and day: a line falling towards 0 is an identity holding
/// more and more it does not use.
pub fn over_privilege_trend(
    drift: &crate::rbac::drift::RbacDrift,
    date: chrono::NaiveDate,
) -> Result<String> {
    let chart_name = "over-privilege";
    let error = chart_error(chart_name);
    let days = crate::rbac::drift::TREND_DAYS;
    let first = date - chrono::Duration::days(days as i64 - 1);
    let width = 2 * WIDTH + 20;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(&error)?;
        // The x range runs past the last day so the legend has room to the right of the lines.
        let last_day = (days - 1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Over-privilege score: rules used in the trailing 7 days / rules held",
                (FONT, 17),
            )
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.3f64..last_day * 1.75, 0f64..1.05f64)
            .map_err(&error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(days * 2)
            .y_labels(6)
            .x_label_formatter(&|position| {
                let index = position.round();
                if (position - index).abs() < 1e-6 && (0.0..=last_day).contains(&index) {
                    (first + chrono::Duration::days(index as i64))
                        .format("%m-%d")
                        .to_string()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|value| format!("{value:.1}"))
            .x_desc("day (UTC)")
            .y_desc("used / held")
            .axis_desc_style((FONT, 13))
            .label_style((FONT, 12))
            .draw()
            .map_err(&error)?;
        for (position, identity) in drift
            .over_privilege
            .iter()
            .take(OVER_PRIVILEGE_LINES)
            .enumerate()
        {
            let color = palette_color(position);
            let points: Vec<Option<(f64, f64)>> = identity
                .days
                .iter()
                .enumerate()
                .map(|(index, day)| day.score.map(|score| (index as f64, score)))
                .collect();
            // A day without a score (nothing held) breaks the line.
            let runs: Vec<Vec<(f64, f64)>> = points
                .split(Option::is_none)
                .map(|run| run.iter().flatten().copied().collect::<Vec<_>>())
                .filter(|run| !run.is_empty())
                .collect();
            let mut name = identity.identity.clone();
            if name.chars().count() > 44 {
                name = format!("{}…", name.chars().take(43).collect::<String>());
            }
            if let Some(last) = identity.last() {
                name = format!(
                    "{name} ({} of {} unused)",
                    last.unused_rules(),
                    last.granted_rules
                );
            }
            for (run_index, run) in runs.iter().enumerate() {
                chart
                    .draw_series(
                        run.iter()
                            .map(|point| Circle::new(*point, 3, color.filled())),
                    )
                    .map_err(&error)?;
                let line = chart
                    .draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))
                    .map_err(&error)?;
                if run_index == 0 {
                    line.label(name.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                    });
                }
            }
        }
        if drift.over_privilege.is_empty() {
            let style = TextStyle::from((FONT, 13).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text(
                "no identity held RBAC rules in these 8 days",
                &style,
                (width as i32 / 2, HEIGHT as i32 / 2),
            )
            .map_err(&error)?;
        } else {
            draw_legend(&mut chart, SeriesLabelPosition::UpperRight, chart_name)?;
        }
        root.present().map_err(&error)?;
    }
    Ok(svg)
}
