//! `dicom-deid token new NAME [--route R]...`: mints an ingest token.

use dicom_deid_server::auth;
use dicom_deid_server::config::check_name;

/// Token subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a new ingest token: prints the token once, and the `[[tokens]]` lines (with its
    /// SHA-256, never the token) to add to the gateway's config.
    New {
        /// The token's name: logged for each request it lets in (e.g. the sending site).
        name: String,
        /// A route the token may use (repeat for several). Default: `default`.
        #[arg(long = "route", value_name = "ROUTE")]
        routes: Vec<String>,
    },
}

/// Runs a token subcommand.
pub fn run(command: TokenCommand) -> u8 {
    match command {
        TokenCommand::New { name, routes } => new(&name, &routes),
    }
}

fn new(name: &str, routes: &[String]) -> u8 {
    if let Err(reason) = check_name(name) {
        return crate::fail(format!("token name: {reason}"));
    }
    for route in routes {
        if let Err(reason) = check_name(route) {
            return crate::fail(format!("--route {route}: {reason}"));
        }
    }
    let routes: Vec<String> = if routes.is_empty() {
        vec!["default".to_string()]
    } else {
        routes.to_vec()
    };
    let (token, hash) = match auth::mint() {
        Ok(t) => t,
        Err(e) => return crate::fail(format!("no random numbers from the system: {e}")),
    };
    let routes = routes
        .iter()
        .map(|r| format!("\"{r}\""))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "Token \"{name}\" (shown only now; give it to the sender, who sends it as \
         `Authorization: Bearer <token>`):\n\n{token}\n\n\
         Add to the gateway's config (it holds only the token's SHA-256):\n\n\
         [[tokens]]\nname = \"{name}\"\nsha256 = \"{hash}\"\nroutes = [{routes}]"
    );
    0
}
