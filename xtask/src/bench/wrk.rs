//! The load generator: wrk against one route, and what its output says.

use std::fmt::Write as _;
use std::process::Command;

use super::statistics::Sample;
use super::LOAD_CPU;
use crate::process::state_dir;

/// Runs wrk on the load generator's CPU against one route for `seconds`, each request
/// with a random one of `cookies` (none if there are none).
pub(super) fn wrk(
    port: u16,
    route: &str,
    cookies: &[String],
    seconds: u64,
) -> Result<Sample, String> {
    let script = state_dir().join("bench").join("wrk.lua");
    let mut lua = String::from("local cookies = {\n");
    for cookie in cookies {
        let _ = writeln!(lua, "  {cookie:?},");
    }
    lua.push_str(
        "}\nrequest = function()\n  if #cookies == 0 then return wrk.format(\"GET\") end\n  \
         return wrk.format(\"GET\", nil, { Cookie = cookies[math.random(#cookies)] })\nend\n",
    );
    std::fs::write(&script, lua).map_err(|e| e.to_string())?;
    let output = Command::new("taskset")
        .args(["-c", LOAD_CPU, "wrk", "-t1", "-c32", "--latency"])
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}{route}"))
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).ok_or_else(|| format!("unexpected wrk output:\n{text}"))
}

/// The figures of wrk's `--latency` output; the server's CPU and commands are left for
/// the caller.
fn parse_wrk(text: &str) -> Option<Sample> {
    let number = |prefix: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    let latency = |percentile: &str| -> Option<f64> {
        let value = number(percentile)?;
        let (digits, factor) = if let Some(v) = value.strip_suffix("us") {
            (v, 1.0)
        } else if let Some(v) = value.strip_suffix("ms") {
            (v, 1_000.0)
        } else {
            (value.strip_suffix('s')?, 1_000_000.0)
        };
        Some(digits.parse::<f64>().ok()? * factor)
    };
    let mut errors = number("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(socket) = number("Socket errors:") {
        errors += socket
            .split(',')
            .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    // "  136532 requests in 2.00s, 12.34MB read"
    let requests = text.lines().find_map(|l| {
        let (count, rest) = l.trim().split_once(' ')?;
        rest.starts_with("requests in")
            .then(|| count.parse().ok())?
    })?;
    Some(Sample {
        requests,
        rps: number("Requests/sec:")?.parse().ok()?,
        p50_us: latency("50%")?,
        p99_us: latency("99%")?,
        errors,
        cpu_us: 0.0,
        commands: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_parses() {
        let text = "  Latency Distribution\n     50%  420.00us\n     75%  1.00ms\n     99%    1.93ms\n  \
                    146092 requests in 2.10s, 12.34MB read\n  \
                    Socket errors: connect 0, read 2, write 1, timeout 0\n  Non-2xx or 3xx responses: 3\n\
                    Requests/sec:  69566.27\n";
        let sample = parse_wrk(text).unwrap();
        assert_eq!(sample.rps, 69566.27);
        assert_eq!(sample.requests, 146_092);
        assert_eq!(sample.p50_us, 420.0);
        assert_eq!(sample.p99_us, 1930.0);
        assert_eq!(sample.errors, 6);
    }
}
