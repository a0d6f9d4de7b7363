//! `rvs-genhash`: keepalived's `genhash` for rvs. It GETs a URL from a real server the way
//! rvs's HTTP_GET / SSL_GET checker does (same request line and headers, same body rule)
//! and prints the MD5 digest of the body, the value of a `digest` line in keepalived.conf:
//!
//! ```text
//! $ rvs-genhash -s 192.168.0.18 -p 80 -u /health
//! b1946ac92492d2347c6235b4d2611184
//! ```
//!
//! Same options as `genhash` (keepalived 2.2); `-v` also shows the response head and body
//! as hex dumps. One difference: a failure exits 1 (genhash exits 0 after "Connection
//! failed"), so scripts can tell.

use clap::Parser;
use rvs_check::plan::{ConnSpec, UrlSpec};
use rvs_keepalived::HttpProtocol;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "rvs-genhash",
    version,
    disable_version_flag = true,
    about = "MD5 digest of a URL for keepalived.conf's HTTP_GET/SSL_GET `digest` (keepalived's genhash)"
)]
struct Args {
    /// Use SSL (SSL_GET).
    #[arg(short = 'S', long = "use-ssl")]
    use_ssl: bool,
    /// Use SNI in the SSL handshake (the virtualhost, see -V).
    #[arg(short = 'I', long = "use-sni")]
    use_sni: bool,
    /// The real server's address.
    #[arg(short = 's', long = "server", value_name = "ADDRESS")]
    server: String,
    /// The real server's port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    port: u16,
    /// The URL path to GET.
    #[arg(short = 'u', long = "url", value_name = "URL")]
    url: String,
    /// The virtualhost of the GET (the Host: header; default ADDRESS:PORT, as the checker).
    #[arg(short = 'V', long = "use-virtualhost", value_name = "HOST")]
    virtualhost: Option<String>,
    /// Show the response head and body as hex dumps, and the response time.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
    /// Mark the connection with this firewall mark (SO_MARK).
    #[arg(short = 'm', long = "fwmark", value_name = "MARK")]
    fwmark: Option<u32>,
    /// HTTP protocol: 1.0, 1.0C (1.0 with Connection: close) or 1.1.
    #[arg(
        short = 'P',
        long = "protocol",
        value_name = "PROTO",
        default_value = "1.0"
    )]
    protocol: String,
    /// Timeout in seconds.
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "SECONDS",
        default_value_t = 5.0
    )]
    timeout: f64,
}

fn protocol(p: &str) -> Option<HttpProtocol> {
    match p {
        "1.0" => Some(HttpProtocol::Http10),
        "1.0C" | "1.0c" => Some(HttpProtocol::Http10Close),
        "1.1" => Some(HttpProtocol::Http11),
        _ => None,
    }
}

/// `0016  0a 53 ... - 20 53 ...   .Server: SimpleH`: offset, 16 bytes in two halves,
/// the printable characters.
fn hexdump(title: &str, b: &[u8]) -> String {
    let mut o = format!("-----------------------[ {title:^24} ]-----------------------\n");
    for (i, row) in b.chunks(16).enumerate() {
        let mut hex = String::new();
        for (j, x) in row.iter().enumerate() {
            if j == 8 {
                hex.push_str("- ");
            }
            hex.push_str(&format!("{x:02x} "));
        }
        if row.len() <= 8 {
            hex.push_str("- ");
        }
        let ascii: String = row
            .iter()
            .map(|c| {
                if c.is_ascii_graphic() || *c == b' ' {
                    *c as char
                } else {
                    '.'
                }
            })
            .collect();
        o.push_str(&format!("{:04}  {hex:<50}  {ascii}\n", i * 16));
    }
    o
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(what) = rvs_docs::requested(&argv) {
        use clap::CommandFactory;
        return match rvs_docs::generate(Args::command(), "1", what) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rvs-genhash: {e}");
                ExitCode::from(2)
            }
        };
    }
    let a = Args::parse();
    let Some(proto) = protocol(&a.protocol) else {
        eprintln!("rvs-genhash: -P {}: one of 1.0, 1.0C, 1.1", a.protocol);
        return ExitCode::from(2);
    };
    let dst: SocketAddr = match (a.server.as_str(), a.port)
        .to_socket_addrs()
        .map(|mut i| i.next())
    {
        Ok(Some(d)) => d,
        _ => {
            eprintln!("rvs-genhash: cannot resolve {}", a.server);
            return ExitCode::from(2);
        }
    };
    let host = a.virtualhost.clone().unwrap_or_else(|| dst.to_string());
    let url = UrlSpec {
        path: a.url.clone(),
        codes: vec![(100, 599)],
        digest: None,
        sni: (a.use_sni).then(|| host.clone()),
        host,
    };
    let conn = ConnSpec {
        dst,
        bind: None,
        bind_if: None,
        fwmark: a.fwmark,
        timeout: Duration::from_secs_f64(a.timeout.max(0.001)),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rvs-genhash: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let tls = a.use_ssl.then_some(url.sni.as_deref());
    match rt.block_on(rvs_check::probe::fetch(&conn, &url, proto, tls)) {
        Ok(f) => {
            if a.verbose {
                print!("{}", hexdump("HTTP Header Buffer", &f.head));
                println!(
                    "-----------------------[ HTTP Header Ascii Buffer ]-----------------------"
                );
                println!("{}", String::from_utf8_lossy(&f.head).trim_end());
                println!();
                print!("{}", hexdump("HTML Buffer", &f.body));
                println!();
                print!("{}", hexdump("HTML hash resulting", &f.digest));
                println!(
                    "-----------------------[ HTML hash final resulting ]-----------------------"
                );
            }
            println!("{}", hex(&f.digest));
            if a.verbose {
                println!();
                println!(
                    "Global response time for [{}] = {} usecs",
                    a.url,
                    started.elapsed().as_micros()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rvs-genhash: {e}");
            ExitCode::FAILURE
        }
    }
}
