//! `percore-bench plot`: an SVG latency-percentile chart of one or more YCSB results, in the
//! style of HdrHistogram's plotter: the x axis is the percentile on a log scale of
//! `1/(1 - percentile)` (so 90 %, 99 %, 99.9 % are evenly spaced), the y axis the latency
//! in microseconds, on a log scale so that runs an order of magnitude apart fit together.
//! One line per result and operation.

use std::path::PathBuf;

use anyhow::{bail, Context};
use plotters::prelude::*;

use super::ops::OpKind;
use super::report::Report;

/// Arguments of `percore-bench plot`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlotArgs {
    /// JSON results of `percore-bench ycsb --json`.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The SVG file to write.
    #[arg(long, short, default_value = "ycsb-latency.svg")]
    pub output: PathBuf,
    /// Operations to draw (READ, UPDATE, INSERT, SCAN, READ-MODIFY-WRITE, TOTAL)
    /// [default: every operation of each result, without TOTAL].
    #[arg(long = "op")]
    pub ops: Vec<String>,
    /// The phase: run or load.
    #[arg(long, default_value = "run")]
    pub phase: String,
    /// Chart title [default: "YCSB latency by percentile"].
    #[arg(long)]
    pub title: Option<String>,
    /// Width and height in pixels.
    #[arg(long, default_value_t = 1100)]
    pub width: u32,
    /// Height in pixels.
    #[arg(long, default_value_t = 650)]
    pub height: u32,
}

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x = log10(1/(1-q)), latency µs)` points.
    pub points: Vec<(f64, f64)>,
}

/// The x coordinate of quantile `q` (< 1).
pub fn x_of(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// The percentile at x coordinate `x`, as a label: 0 → `0%`, 2 → `99%`, 3 → `99.9%`.
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.ceil() as usize).saturating_sub(2);
    format!("{p:.decimals$}%")
}

/// The lines to draw from `reports`.
pub fn series(reports: &[Report], phase: &str, ops: &[String]) -> anyhow::Result<Vec<Series>> {
    let wanted = ops
        .iter()
        .map(|o| match OpKind::from_name(o) {
            Some(k) => Ok(k.name().to_string()),
            None if o.eq_ignore_ascii_case("total") => Ok("TOTAL".to_string()),
            None => Err(anyhow::anyhow!(
                "unknown operation {o:?}: use READ, UPDATE, INSERT, SCAN, READ-MODIFY-WRITE or TOTAL"
            )),
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    let mut out = Vec::new();
    for r in reports {
        let Some(p) = r.phase(phase) else { bail!("{} has no {phase} phase", r.label) };
        for o in &p.operations {
            let keep = if wanted.is_empty() { o.op != "TOTAL" } else { wanted.contains(&o.op) };
            if !keep || o.percentiles.is_empty() {
                continue;
            }
            // Drop the 100 % point (x = ∞) and keep latencies positive for the log axis.
            let points = o.percentiles.iter().filter(|p| p[0] < 1.0).map(|p| (x_of(p[0]), p[1].max(0.1))).collect();
            out.push(Series { name: format!("{} {}", r.label, o.op), points });
        }
    }
    if out.is_empty() {
        bail!("nothing to plot: no {phase} phase operation matches {ops:?}");
    }
    Ok(out)
}

/// Reads the results and writes the chart.
pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    let reports = args.inputs.iter().map(|p| Report::read(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let lines = series(&reports, &args.phase, &args.ops)?;
    let title = args.title.clone().unwrap_or_else(|| "YCSB latency by percentile".into());
    draw(&args, &title, &lines).with_context(|| format!("drawing {}", args.output.display()))?;
    println!("wrote {}", args.output.display());
    Ok(())
}

fn draw(args: &PlotArgs, title: &str, lines: &[Series]) -> anyhow::Result<()> {
    let points = lines.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::MAX, 0.0f64);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let x_max = x_max.ceil().min(7.0);
    let root = SVGBackend::new(&args.output, (args.width, args.height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, (y_min * 0.8..y_max * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(x_max as usize + 1)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| if *y < 10.0 { format!("{y:.1}") } else { format!("{y:.0}") })
        .draw()?;
    for (i, s) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis() {
        assert!((x_of(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(x_of(0.0), 0.0);
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(5.0), "99.999%");
    }
}
