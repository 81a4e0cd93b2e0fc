//! Charts drawn on the server as inline SVG by `plotters` (its SVG backend, no font feature):
//! text becomes SVG `<text>` that the browser lays out with its own fonts, so drawing needs no
//! font files on the server and a machine without fonts renders the same SVG.
//!
//! Every chart on a page sits beside the table it was drawn from (the text alternative, also
//! offered as CSV), so these functions only draw; they never compute a figure. Values are
//! `f64` here because they are screen coordinates; the tables show the exact figures.

use plotters::prelude::*;

use crate::error::ConsoleError;

const WIDTH: u32 = 720;
const HEIGHT: u32 = 260;
/// The colour of series `i`: distinguishable, dark enough on white.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 95, 168),
    RGBColor(196, 78, 28),
    RGBColor(46, 125, 50),
    RGBColor(123, 31, 162),
    RGBColor(120, 100, 20),
    RGBColor(0, 121, 130),
];

/// One line or set of bars: a value per x label, `None` where there is nothing to show.
pub struct Series {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

/// A chart: what it shows, the x axis's labels (hours or days), the series and the value of
/// a threshold line, if one applies.
pub struct Chart<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub x_labels: &'a [String],
    pub series: Vec<Series>,
    pub threshold: Option<f64>,
}

fn drawing_error(error: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Internal(format!("drawing a chart: {error}"))
}

/// The smallest y range that shows every value and the threshold, starting at zero.
fn y_top(chart: &Chart<'_>) -> f64 {
    let highest = chart
        .series
        .iter()
        .flat_map(|series| series.values.iter().flatten())
        .copied()
        .chain(chart.threshold)
        .fold(0.0_f64, f64::max);
    if highest > 0.0 {
        highest * 1.1
    } else {
        1.0
    }
}

/// Wraps plotters' SVG in what a page needs: an accessible name, and a class for the
/// stylesheet (plotters draws with fixed sizes; CSS lets the chart shrink on narrow screens).
fn finish(svg: String, title: &str) -> String {
    let label: String = title
        .chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            other => other.to_string(),
        })
        .collect();
    svg.replacen(
        "<svg ",
        &format!(r#"<svg class="chart" role="img" aria-label="{label}" "#),
        1,
    )
}

/// Which x labels to print so they do not overlap: about a dozen at most.
fn label_every(count: usize) -> usize {
    count.div_ceil(12).max(1)
}

/// A line chart (with a dot on each value, so a single day still shows).
pub fn line_chart(chart: &Chart<'_>) -> Result<String, ConsoleError> {
    draw(chart, false)
}

/// A bar chart; several series stand side by side within each x slot.
pub fn bar_chart(chart: &Chart<'_>) -> Result<String, ConsoleError> {
    draw(chart, true)
}

fn draw(chart: &Chart<'_>, bars: bool) -> Result<String, ConsoleError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing_error)?;
        let slots = chart.x_labels.len().max(1);
        let x_range = -0.5_f64..(slots as f64 - 0.5);
        let mut context = ChartBuilder::on(&root)
            .caption(chart.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x_range, 0.0..y_top(chart))
            .map_err(drawing_error)?;
        let every = label_every(slots);
        let labels = chart.x_labels;
        context
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(slots)
            .x_label_formatter(&|x| {
                let index = x.round();
                if (x - index).abs() > 0.01 || index < 0.0 {
                    return String::new();
                }
                let index = index as usize;
                if index % every != 0 {
                    return String::new();
                }
                labels.get(index).cloned().unwrap_or_default()
            })
            .y_desc(chart.y_label)
            .draw()
            .map_err(drawing_error)?;
        let width = 0.8 / chart.series.len().max(1) as f64;
        for (number, series) in chart.series.iter().enumerate() {
            let colour = COLOURS[number % COLOURS.len()];
            let points: Vec<(f64, f64)> = series
                .values
                .iter()
                .enumerate()
                .filter_map(|(x, value)| value.map(|value| (x as f64, value)))
                .collect();
            let legend = if bars {
                let left = -0.4 + width * number as f64;
                context
                    .draw_series(points.iter().map(|(x, y)| {
                        Rectangle::new([(x + left, 0.0), (x + left + width, *y)], colour.filled())
                    }))
                    .map_err(drawing_error)?
            } else {
                context
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        colour.stroke_width(2),
                    ))
                    .map_err(drawing_error)?;
                context
                    .draw_series(
                        points
                            .iter()
                            .map(|point| Circle::new(*point, 3, colour.filled())),
                    )
                    .map_err(drawing_error)?
            };
            legend.label(series.label.as_str()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
            });
        }
        if let Some(threshold) = chart.threshold {
            context
                .draw_series(LineSeries::new(
                    [(-0.5, threshold), (slots as f64 - 0.5, threshold)],
                    RED.stroke_width(1),
                ))
                .map_err(drawing_error)?
                .label("threshold")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 10, y)], RED));
        }
        context
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(drawing_error)?;
        root.present().map_err(drawing_error)?;
    }
    Ok(finish(svg, chart.title))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days() -> Vec<String> {
        vec![
            "2026-12-01".into(),
            "2026-12-02".into(),
            "2026-12-03".into(),
        ]
    }

    #[test]
    fn a_line_chart_draws_its_values_and_names_itself() {
        let labels = days();
        let svg = line_chart(&Chart {
            title: "Success <rate>",
            y_label: "%",
            x_labels: &labels,
            series: vec![Series {
                label: "EUR".into(),
                values: vec![Some(90.0), None, Some(100.0)],
            }],
            threshold: Some(99.0),
        })
        .unwrap();
        assert!(
            svg.starts_with(r#"<svg class="chart" role="img" aria-label="Success &lt;rate&gt;" "#)
        );
        assert_eq!(svg.matches("<circle").count(), 2, "one dot per value");
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("2026-12-03"));
    }

    #[test]
    fn a_bar_chart_draws_one_bar_per_value() {
        let labels = days();
        let empty = bar_chart(&Chart {
            title: "Declines",
            y_label: "declines",
            x_labels: &labels,
            series: vec![],
            threshold: None,
        })
        .unwrap();
        let svg = bar_chart(&Chart {
            title: "Declines",
            y_label: "declines",
            x_labels: &labels,
            series: vec![Series {
                label: "fraud".into(),
                values: vec![Some(1.0), Some(3.0), None],
            }],
            threshold: None,
        })
        .unwrap();
        // Two bars, and the legend's swatch.
        assert_eq!(
            svg.matches("<rect").count(),
            empty.matches("<rect").count() + 3
        );
    }
}
