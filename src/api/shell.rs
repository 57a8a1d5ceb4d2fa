//! `auditlens shell`: an interactive SQL session over gRPC.
//!
//! Line editing and history come from rustyline (history in
//! `~/.auditlens_history`). A statement may span lines and runs when a line
//! ends it with `;` outside quotes and comments; dot-commands (`.tables`,
//! `.schema NAME`, `.timing`, `.format FORMAT`, `.read FILE`, `.help`,
//! `.quit`) work on a line of their own. The server runs one statement per
//! request, so text with several statements (`.read`) is split here first,
//! with the same quoting rules.

use super::ApiError;
use super::client::{Client, run_query};
use super::output::{OutputFormat, print_result, truncation_note};
use super::proto;
use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

/// Splits SQL text into statements at `;` outside quotes and comments.
/// Returns the complete statements and the unfinished rest.
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\'' | '"' => {
                current.push(character);
                // Quotes close at the next same quote; a doubled quote is an
                // escaped one and simply reopens.
                for inner in characters.by_ref() {
                    current.push(inner);
                    if inner == character {
                        break;
                    }
                }
            }
            '-' if characters.peek() == Some(&'-') => {
                for inner in characters.by_ref() {
                    if inner == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            '/' if characters.peek() == Some(&'*') => {
                characters.next();
                let mut previous = ' ';
                for inner in characters.by_ref() {
                    if previous == '*' && inner == '/' {
                        break;
                    }
                    previous = inner;
                }
                current.push(' ');
            }
            ';' => {
                if !current.trim().is_empty() {
                    statements.push(current.trim().to_string());
                }
                current.clear();
            }
            other => current.push(other),
        }
    }
    (statements, current)
}

/// Settings a session keeps.
#[derive(Debug, Clone)]
pub struct Session {
    pub format: OutputFormat,
    pub timing: bool,
}

/// What one line of dot-command asks for.
#[derive(Debug, PartialEq, Eq)]
enum DotCommand {
    Tables,
    Schema(String),
    Timing(Option<bool>),
    Format(String),
    Read(String),
    Help,
    Quit,
    Unknown(String),
}

fn parse_dot_command(line: &str) -> DotCommand {
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or_default();
    let argument = words.collect::<Vec<_>>().join(" ");
    match command {
        ".tables" => DotCommand::Tables,
        ".schema" => DotCommand::Schema(argument),
        ".timing" => DotCommand::Timing(match argument.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        }),
        ".format" | ".mode" => DotCommand::Format(argument),
        ".read" => DotCommand::Read(argument),
        ".help" => DotCommand::Help,
        ".quit" | ".exit" => DotCommand::Quit,
        other => DotCommand::Unknown(other.to_string()),
    }
}

const HELP: &str = "\
Statements end with ';' and may span lines. One statement per request.
.tables            list views and tables
.schema NAME       columns of a view or table
.timing [on|off]   print elapsed time after each statement
.format FORMAT     table, csv, json or arrow
.read FILE         run the statements in FILE
.help              this text
.quit              leave";

/// Runs one statement and prints its result; errors are printed, not returned,
/// so the session goes on.
pub async fn execute(
    client: &mut Client,
    session: &Session,
    sql: &str,
    parameters: HashMap<String, String>,
    out: &mut dyn Write,
) -> bool {
    let started = Instant::now();
    let request = proto::QueryRequest {
        sql: sql.to_string(),
        parameters,
        format: session.format.result_format() as i32,
        ..proto::QueryRequest::default()
    };
    match run_query(client, request).await {
        Ok(result) => {
            if let Err(error) = print_result(&result, session.format, out) {
                eprintln!("error: {error}");
                return false;
            }
            if let Some(note) = truncation_note(&result.summary) {
                eprintln!("{note}");
            }
            if session.timing {
                eprintln!(
                    "{} rows, server {} ms, total {:.1} ms",
                    result.summary.rows,
                    result.summary.elapsed_ms,
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            true
        }
        Err(ApiError::Rpc(status)) => {
            eprintln!("error ({:?}): {}", status.code(), status.message());
            false
        }
        Err(error) => {
            eprintln!("error: {error}");
            false
        }
    }
}

/// Handles a dot-command; returns false to end the session.
async fn dot_command(
    client: &mut Client,
    session: &mut Session,
    line: &str,
    out: &mut dyn Write,
) -> bool {
    match parse_dot_command(line) {
        DotCommand::Tables => {
            let sql = "SELECT table_name AS name, table_type AS type FROM information_schema.tables ORDER BY 1";
            execute(client, session, sql, HashMap::new(), out).await;
        }
        DotCommand::Schema(name) if name.is_empty() => eprintln!("usage: .schema NAME"),
        DotCommand::Schema(name) => {
            let sql = "SELECT column_name AS column, data_type AS type, is_nullable AS nullable \
                       FROM information_schema.columns WHERE table_name = $name ORDER BY ordinal_position";
            execute(
                client,
                session,
                sql,
                HashMap::from([("name".to_string(), name)]),
                out,
            )
            .await;
        }
        DotCommand::Timing(setting) => {
            session.timing = setting.unwrap_or(!session.timing);
            eprintln!("timing {}", if session.timing { "on" } else { "off" });
        }
        DotCommand::Format(format) => match format.parse::<OutputFormat>() {
            Ok(format) => session.format = format,
            Err(error) => eprintln!("{error}"),
        },
        DotCommand::Read(path) if path.is_empty() => eprintln!("usage: .read FILE"),
        DotCommand::Read(path) => match std::fs::read_to_string(&path) {
            Ok(text) => {
                let (statements, rest) = split_statements(&text);
                for statement in statements
                    .iter()
                    .map(String::as_str)
                    .chain(Some(rest.trim()).filter(|r| !r.is_empty()))
                {
                    if !execute(client, session, statement, HashMap::new(), out).await {
                        break;
                    }
                }
            }
            Err(error) => eprintln!("cannot read {path}: {error}"),
        },
        DotCommand::Help => eprintln!("{HELP}"),
        DotCommand::Quit => return false,
        DotCommand::Unknown(command) => eprintln!("unknown command {command}; try .help"),
    }
    true
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("AUDITLENS_HISTORY")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|home| std::path::PathBuf::from(home).join(".auditlens_history"))
        })
}

/// The interactive loop. Line reading blocks, so it runs on a blocking
/// thread and hands lines over a channel.
pub async fn run(mut client: Client, mut session: Session) -> Result<(), ApiError> {
    let (line_sender, mut lines) = tokio::sync::mpsc::channel::<String>(1);
    let (prompt_sender, prompts) = std::sync::mpsc::channel::<&'static str>();
    let reader = tokio::task::spawn_blocking(move || -> Result<(), ApiError> {
        let mut editor = rustyline::DefaultEditor::new()
            .map_err(|error| ApiError::Client(format!("starting the line editor: {error}")))?;
        let history = history_path();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        while let Ok(prompt) = prompts.recv() {
            match editor.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    if line_sender.blocking_send(line).is_err() {
                        break;
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => {
                    if line_sender.blocking_send(String::from("\u{3}")).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        Ok(())
    });

    let mut stdout = std::io::stdout();
    let mut pending = String::new();
    loop {
        let prompt = if pending.trim().is_empty() {
            "auditlens> "
        } else {
            "      ...> "
        };
        if prompt_sender.send(prompt).is_err() {
            break;
        }
        let Some(line) = lines.recv().await else {
            break;
        };
        if line == "\u{3}" {
            pending.clear();
            continue;
        }
        if pending.trim().is_empty() && line.trim_start().starts_with('.') {
            if !dot_command(&mut client, &mut session, line.trim(), &mut stdout).await {
                break;
            }
            continue;
        }
        pending.push_str(&line);
        pending.push('\n');
        let (statements, rest) = split_statements(&pending);
        pending = if rest.trim().is_empty() {
            String::new()
        } else {
            rest
        };
        for statement in statements {
            execute(
                &mut client,
                &session,
                &statement,
                HashMap::new(),
                &mut stdout,
            )
            .await;
        }
    }
    drop(prompt_sender);
    match reader.await {
        Ok(result) => result,
        Err(error) => Err(ApiError::Client(format!("line reader failed: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_semicolons_outside_quotes_and_comments() {
        let (statements, rest) = split_statements(
            "SELECT ';' AS a; -- c; omment\nSELECT \"x;y\" FROM t /* ; */ WHERE a = 'it''s';\nSELECT 3",
        );
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0], "SELECT ';' AS a");
        assert!(statements[1].contains("'it''s'"));
        assert!(statements[1].contains("\"x;y\""));
        assert_eq!(rest.trim(), "SELECT 3");
        let (none, unfinished) = split_statements("SELECT 1\nFROM events");
        assert!(none.is_empty());
        assert_eq!(unfinished, "SELECT 1\nFROM events");
    }

    #[test]
    fn reads_dot_commands() {
        assert_eq!(
            parse_dot_command(".schema events"),
            DotCommand::Schema("events".into())
        );
        assert_eq!(
            parse_dot_command(".timing on"),
            DotCommand::Timing(Some(true))
        );
        assert_eq!(parse_dot_command(".timing"), DotCommand::Timing(None));
        assert_eq!(
            parse_dot_command(".read a.sql"),
            DotCommand::Read("a.sql".into())
        );
        assert_eq!(
            parse_dot_command(".bogus"),
            DotCommand::Unknown(".bogus".into())
        );
    }
}
