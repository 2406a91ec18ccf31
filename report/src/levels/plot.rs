//! `levels.png` and `levels.svg`: per task, the level-final return against the level, one line per
//! method (IQM over runs, as the learning curves) with its 95 % bootstrap band, and one legend
//! for all panels above them.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::TaskLevels;
use crate::plots::{
    color, fmt_value, range, register_font, render, title, DynResult, LABEL, LEGEND, SANS, TICK,
};

const PANEL_W: u32 = 620;
const PANEL_H: u32 = 500;
const TITLE_H: u32 = 64;
/// Height of one row of the legend.
const LEGEND_ROW: u32 = 34;

/// Rows and columns of the panels: one row up to three tasks, 2 x 2 for four, else rows of three.
fn layout(n: usize) -> (usize, usize) {
    match n {
        0..=3 => (1, n.max(1)),
        4 => (2, 2),
        _ => (n.div_ceil(3), 3),
    }
}

/// Legend items (`(method, text width)`) broken into rows that fit `width` pixels.
fn legend_rows(items: &[(String, u32)], width: u32) -> Vec<Vec<(String, u32)>> {
    let mut rows: Vec<Vec<(String, u32)>> = vec![Vec::new()];
    let mut used = 0;
    for (m, w) in items {
        let need = item_width(*w);
        if used + need > width.saturating_sub(40) && !rows.last().unwrap().is_empty() {
            rows.push(Vec::new());
            used = 0;
        }
        used += need;
        rows.last_mut().unwrap().push((m.clone(), *w));
    }
    rows
}

/// A legend item: a 34-pixel line with its marker, a gap, the name, and the space to the next.
fn item_width(text: u32) -> u32 {
    34 + 10 + text + 36
}

/// Approximate text width of a legend name (DejaVu Sans averages about 0.6 em per character),
/// used only to size the figure before drawing.
fn guess_width(text: &str) -> u32 {
    text.chars().count() as u32 * (LEGEND * 6 / 10 + 1)
}

/// Draws `levels.png` and `levels.svg` into `out`; returns the two files.
pub fn draw(out: &Path, tasks: &[TaskLevels], methods: &[String]) -> Result<Vec<PathBuf>> {
    let present: Vec<String> = methods
        .iter()
        .filter(|m| {
            tasks
                .iter()
                .any(|t| t.methods.iter().any(|x| &x.method == *m))
        })
        .cloned()
        .collect();
    let (rows, cols) = layout(tasks.len());
    let width = cols as u32 * PANEL_W;
    let items: Vec<(String, u32)> = present
        .iter()
        .map(|m| (m.clone(), guess_width(m)))
        .collect();
    let legend_h = legend_rows(&items, width).len() as u32 * LEGEND_ROW + 12;
    let size = (width, TITLE_H + legend_h + rows as u32 * PANEL_H);
    let mut files = Vec::new();
    render!(out, "levels", size, files, |root| draw_levels(
        &root, tasks, methods, &present, legend_h
    ));
    Ok(files)
}

fn draw_levels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    tasks: &[TaskLevels],
    methods: &[String],
    present: &[String],
    legend_h: u32,
) -> DynResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (top, rest) = root.split_vertically(TITLE_H);
    title(
        &top,
        "Greedy return at each level's end: IQM over seeds with 95 % bootstrap band",
    )?;
    let (legend, body) = rest.split_vertically(legend_h);
    draw_legend(&legend, present, methods)?;
    let (rows, cols) = layout(tasks.len());
    let panels = body.split_evenly((rows, cols));
    for (panel, t) in panels.iter().zip(tasks) {
        let n = t.levels.max(1);
        let (ylo, yhi) = range(
            t.methods
                .iter()
                .flat_map(|m| m.per_level.iter().flatten())
                .flat_map(|(e, _)| [e.lo, e.hi, e.point]),
        );
        let caption = match t.level_steps {
            Some(s) => format!(
                "{} ({n} levels of {})",
                t.task,
                crate::plots::fmt_step(s as f64)
            ),
            None => format!("{} ({n} levels)", t.task),
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, (SANS, LABEL + 1))
            .margin(14)
            .margin_right(22)
            .x_label_area_size(52)
            .y_label_area_size(84)
            .build_cartesian_2d(-0.3f64..(n - 1) as f64 + 0.3, ylo..yhi)?;
        // Integer ticks only: every level up to 12 levels, else every second, fifth, ... level.
        let every = [1u64, 2, 5, 10, 20, 50, 100]
            .into_iter()
            .find(|s| n.div_ceil(*s) <= 12)
            .unwrap_or(n);
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .x_desc("level")
            .y_desc("greedy return at the level's end")
            .axis_desc_style((SANS, LABEL))
            .label_style((SANS, TICK))
            .x_labels(n.div_ceil(every) as usize + 1)
            .y_labels(6)
            .x_label_formatter(&|x| {
                let k = x.round();
                if (x - k).abs() < 1e-6 && k >= 0.0 && (k as u64).is_multiple_of(every) {
                    format!("{k:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| fmt_value(*y))
            .draw()?;
        for m in &t.methods {
            let col = color(&m.method, methods);
            // A band over each run of consecutive levels that have a value.
            let pts: Vec<(f64, f64, f64, f64)> = m
                .per_level
                .iter()
                .enumerate()
                .filter_map(|(k, e)| e.map(|(e, _)| (k as f64, e.point, e.lo, e.hi)))
                .collect();
            for seg in segments(&pts) {
                if seg.len() > 1 {
                    let band: Vec<(f64, f64)> = seg
                        .iter()
                        .map(|p| (p.0, p.3))
                        .chain(seg.iter().rev().map(|p| (p.0, p.2)))
                        .collect();
                    chart
                        .draw_series(std::iter::once(Polygon::new(band, col.mix(0.16).filled())))?;
                }
            }
        }
        for m in &t.methods {
            let col = color(&m.method, methods);
            let pts: Vec<(f64, f64, f64, f64)> = m
                .per_level
                .iter()
                .enumerate()
                .filter_map(|(k, e)| e.map(|(e, _)| (k as f64, e.point, e.lo, e.hi)))
                .collect();
            for seg in segments(&pts) {
                chart.draw_series(LineSeries::new(
                    seg.iter().map(|p| (p.0, p.1)),
                    col.stroke_width(3),
                ))?;
            }
            // Smaller markers where many levels crowd the axis.
            let r = if n <= 15 { 5 } else { 3 };
            chart.draw_series(pts.iter().map(|p| Circle::new((p.0, p.1), r, col.filled())))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Splits points at gaps in the level index (a level no run has).
fn segments(pts: &[(f64, f64, f64, f64)]) -> Vec<&[(f64, f64, f64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=pts.len() {
        if i == pts.len() || pts[i].0 - pts[i - 1].0 > 1.5 {
            if start < i {
                out.push(&pts[start..i]);
            }
            start = i;
        }
    }
    out
}

/// One legend for every panel: the methods in display order, centred, in as many rows as needed.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    present: &[String],
    methods: &[String],
) -> DynResult
where
    DB::ErrorType: 'static,
{
    let (w, _) = area.dim_in_pixel();
    let font = (SANS, LEGEND)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut items = Vec::new();
    for m in present {
        let (tw, _) = area.estimate_text_size(m, &font)?;
        items.push((m.clone(), tw));
    }
    for (r, row) in legend_rows(&items, w).iter().enumerate() {
        let total: u32 = row.iter().map(|(_, tw)| item_width(*tw)).sum::<u32>() - 36;
        let mut x = (w.saturating_sub(total) / 2) as i32;
        let y = (6 + r as u32 * LEGEND_ROW + LEGEND_ROW / 2) as i32;
        for (m, tw) in row {
            let col = color(m, methods);
            area.draw(&PathElement::new(
                vec![(x, y), (x + 34, y)],
                col.stroke_width(3),
            ))?;
            area.draw(&Circle::new((x + 17, y), 5, col.filled()))?;
            area.draw(&Text::new(m.clone(), (x + 44, y), font.clone()))?;
            x += item_width(*tw) as i32;
        }
    }
    Ok(())
}
