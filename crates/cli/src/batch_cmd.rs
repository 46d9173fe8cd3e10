//! `dicom-deid batch`: progress on a terminal, `path: reason` lines, a closing summary.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use dicom_deid_engine::batch::{self, BatchOptions, Outcome, Progress};
use dicom_deid_engine::{Change, Engine, Profile, Report};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::BatchArgs;

/// Runs the command; returns the exit code.
pub fn run(args: BatchArgs) -> u8 {
    let key = match crate::keys::load(args.key_file.as_deref()) {
        Ok(key) => key,
        Err(message) => return crate::fail(message),
    };
    let profile = match Profile::load(&args.profile) {
        Ok(profile) => profile,
        Err(e) => return crate::fail(format!("profile: {e}")),
    };
    let engine = Engine::new(profile, key);
    tracing::info!(
        message = "Engine ready.",
        profile = engine.profile().name(),
        key_id = %engine.key_id()
    );

    let bar = progress_bar();
    let stdout = std::io::stdout();
    let report = |p: &Progress| {
        if let Some(bar) = &bar {
            let t = &p.totals;
            bar.set_message(format!(
                "{} files: {} written, {} rejected, {} skipped, {} errors; {:.1} MB/s",
                t.files,
                t.written,
                t.rejected,
                t.skipped,
                t.errors,
                t.mb_per_s()
            ));
        }
        let problem = p.event.problem_line();
        let plan = match &p.event.outcome {
            Outcome::Planned { report, .. } => {
                Some(plan_text(&p.event.path.display().to_string(), report))
            }
            _ => None,
        };
        let print = || {
            if let Some(plan) = &plan {
                // A closed pipe (`| head`) must not stop the run; the summary still counts.
                let _ = stdout.lock().write_all(plan.as_bytes());
            }
            if let Some(line) = &problem {
                eprintln!("{line}");
            }
        };
        match &bar {
            Some(bar) if plan.is_some() || problem.is_some() => bar.suspend(print),
            _ => print(),
        }
    };

    let opts = BatchOptions {
        jobs: args.jobs,
        dry_run: args.dry_run,
        ..BatchOptions::default()
    };
    let result = batch::run(&engine, &args.input, &args.output, &opts, &report);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let _ = stdout.lock().flush();
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            summary.exit_code()
        }
        Err(e) => crate::fail(e),
    }
}

/// A spinner on stderr when it is a terminal; nothing otherwise.
fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message("starting");
    bar.enable_steady_tick(Duration::from_millis(120));
    Some(bar)
}

/// `path:` then one aligned line per change: `  (0010,0010) PatientName  Z -> Empty  [basic profile]`.
/// Tags, keywords, codes and rules only: never a value.
fn plan_text(path: &str, report: &Report) -> String {
    let mut out = format!("{path}:\n");
    if report.changes.is_empty() {
        out.push_str("  (no changes)\n");
        return out;
    }
    let width = |f: fn(&Change) -> usize| report.changes.iter().map(f).max().unwrap_or(0);
    let path_w = width(|c| c.path.len());
    let keyword_w = width(|c| c.keyword.map_or(1, str::len));
    let code_w = width(|c| c.code.as_str().len());
    for c in &report.changes {
        let action = format!("{:?}", c.action);
        out.push_str(&format!(
            "  {:path_w$} {:keyword_w$}  {:>code_w$} -> {action:<11}  [{}]\n",
            c.path,
            c.keyword.unwrap_or("-"),
            c.code.as_str(),
            c.source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_deid_engine::{Action, Code, Source};

    #[test]
    fn a_plan_names_tags_codes_actions_and_sources() {
        let report = Report {
            changes: vec![
                Change {
                    path: "(0010,0010)".into(),
                    tag: 0x0010_0010,
                    keyword: Some("PatientName"),
                    code: Code::Z,
                    action: Action::Empty,
                    source: Source::Table { row: 0 },
                },
                Change {
                    path: "(0008,1110)[0]/(0008,1155)".into(),
                    tag: 0x0008_1155,
                    keyword: None,
                    code: Code::U,
                    action: Action::Uid,
                    source: Source::UnlistedUid,
                },
            ],
            ..Report::default()
        };
        let text = plan_text("in/a.dcm", &report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "in/a.dcm:");
        assert!(
            lines[1].starts_with("  (0010,0010)                PatientName  Z -> Empty"),
            "{text}"
        );
        assert!(lines[1].ends_with("[basic profile]"), "{text}");
        assert!(
            lines[2].starts_with("  (0008,1110)[0]/(0008,1155) -            U -> Uid"),
            "{text}"
        );
    }
}
