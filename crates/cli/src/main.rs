#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = borderwatch::Cli::parse_recording();
    borderwatch::init_logging(&cli);
    match borderwatch::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("borderwatch: {e:#}");
            // 2: the gateway could not be reached (worth retrying); 1: anything else.
            std::process::ExitCode::from(borderwatch::client::exit_code(&e))
        }
    }
}
