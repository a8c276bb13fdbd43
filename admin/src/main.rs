#[tokio::main]
async fn main() -> std::process::ExitCode {
    let code = admin::cli::run(
        std::env::args_os(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
    .await;
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
