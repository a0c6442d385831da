#include "netlayer/sim/timeline.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace netlayer::sim {
namespace {

// The page: data is injected as JSON in place of __DATA__; everything else is static.
constexpr char kPage[] = R"HTML(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>netlayer timeline</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}
.pass{color:#176b2c}.fail{color:#b00020}
#meta{margin-bottom:8px}
#legend span{display:inline-block;margin-right:12px}
#legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
#legend b{display:inline-block;width:18px;height:10px;margin:0 4px 0 8px;vertical-align:middle;opacity:.5}
#wrap{overflow-x:auto;border:1px solid #ccc}
svg text{font:11px system-ui,sans-serif}
#tip{position:fixed;pointer-events:none;background:#fffbe6;border:1px solid #aaa;padding:4px 6px;display:none;max-width:600px;white-space:pre-wrap}
table{border-collapse:collapse;margin-top:12px;font:12px monospace}
td{padding:1px 8px;border-bottom:1px solid #eee;vertical-align:top}
tr.fault td{background:#fff0f0} tr.app td{background:#f0f6ff}
</style></head><body>
<h1 id="title"></h1><div id="meta"></div><div id="legend"></div>
<div>zoom <input id="zoom" type="range" min="0" max="100" value="0"> <span id="zoomv"></span></div>
<div id="wrap"><svg id="svg"></svg></div><div id="tip"></div>
<h2 style="font-size:15px">Events</h2><div id="note"></div><table id="events"></table>
<script>
const D = __DATA__;
const colors = {world:'#555',host:'#000',timer:'#bbb',listen:'#6a3d9a',connect:'#1f78b4',
  accept:'#33a02c',send:'#a6cee3',deliver:'#b2df8a',close:'#ff7f00',reset:'#e31a1c',
  fault:'#fb9a99',app:'#0050d0'};
const r = D.result;
document.getElementById('title').innerHTML = (r.passed ? '<span class="pass">PASS</span> ' :
  '<span class="fail">FAIL</span> ') + r.title;
document.getElementById('meta').textContent = 'trace hash ' + r.hash + ' | ' + r.trace_events +
  ' trace events | simulated ' + r.simulated + (r.passed ? '' : ' | invariant: ' + r.invariant +
  ' at ' + r.failed_at + ': ' + r.detail) + (D.truncated ? ' | (timeline shows the first ' +
  D.events.length + ' events)' : '') + (r.replay ? ' | replay: ' + r.replay : '');
document.getElementById('legend').innerHTML = Object.keys(colors).map(k =>
  '<span><i style="background:' + colors[k] + '"></i>' + k + '</span>').join('') +
  '<span><b style="background:#fb6a4a"></b>partitioned</span><span><b style="background:#fec44f">' +
  '</b>clogged</span><span><b style="background:#9e9ac8"></b>process crashed</span>' +
  '<span><b style="background:#252525"></b>powered off</span><span>| lines: deliveries, from the sender\'s lane</span>';
const hosts = ['-'].concat(D.hosts);
const lane = {}; hosts.forEach((h, i) => lane[h] = i);
const deliveries = D.events.filter(e => e.kind === 'deliver').length;
const tmax = Math.max(1, D.events.length ? D.events[D.events.length - 1].t : 1, r.failed_ns || 0);
const svg = document.getElementById('svg'), tip = document.getElementById('tip');
const left = 90, laneH = 34;
function draw() {
  const zoom = Math.pow(40, document.getElementById('zoom').value / 100);
  document.getElementById('zoomv').textContent = zoom.toFixed(1) + 'x';
  const width = Math.max(900, (window.innerWidth - 60)) * zoom;
  const x = t => left + (width - left - 20) * t / tmax;
  const y = h => 20 + lane[h] * laneH + laneH / 2;
  let s = '';
  // Faults with a duration ("random clog a->b for 656ms", "partition [a,b] -> [c] for 1.2s"):
  // the lanes of the hosts involved are shaded for that long.
  for (const e of D.events) {
    if (e.kind !== 'fault') continue;
    const m = /^(.*?(clog|partition).*) for ([0-9hmsunµ.]+)$/.exec(e.detail);
    if (!m) continue;
    const dur = parseDuration(m[3]);
    const involved = (m[1].replace(/^(random|scripted) /, '').replace(/^(clog|partition) /, '')
      .match(/[A-Za-z0-9._-]+/g) || []).filter(h => h !== '-' && h in lane);
    const color = m[2] === 'clog' ? '#fec44f' : '#fb6a4a';
    for (const h of involved) {
      s += '<rect x="' + x(e.t) + '" y="' + (y(h) - laneH / 2 + 2) + '" width="' +
        Math.max(1, x(e.t + dur) - x(e.t)) + '" height="' + (laneH - 4) + '" fill="' + color +
        '" opacity="0.35"><title>' + esc(e.detail) + '</title></rect>';
    }
  }
  // A host that is down (its process crashed, or it lost power): its lane is shaded from the
  // death to its restart (or the end of the run).
  for (let i = 0; i < D.events.length; i++) {
    const e = D.events[i];
    if (e.kind !== 'host' || !(e.host in lane)) continue;
    const m = /^(random|scripted) (crash|power off)$/.exec(e.detail);
    if (!m) continue;
    let until = tmax;
    for (let j = i + 1; j < D.events.length; j++) {
      const f = D.events[j];
      if (f.kind === 'host' && f.host === e.host && / restart$/.test(f.detail)) { until = f.t; break; }
    }
    const color = m[2] === 'crash' ? '#9e9ac8' : '#252525';
    s += '<rect x="' + x(e.t) + '" y="' + (y(e.host) - laneH / 2 + 2) + '" width="' +
      Math.max(1, x(until) - x(e.t)) + '" height="' + (laneH - 4) + '" fill="' + color +
      '" opacity="0.3"><title>' + esc(e.detail + ' (down until ' + (until / 1e9).toFixed(3) + 's)') +
      '</title></rect>';
  }
  hosts.forEach(h => {
    s += '<line x1="' + left + '" x2="' + width + '" y1="' + y(h) + '" y2="' + y(h) +
      '" stroke="#ddd"/><text x="4" y="' + (y(h) + 4) + '">' + esc(h === '-' ? 'world' : h) + '</text>';
  });
  // Deliveries drawn as arrows from the sending host's lane when the peer is known.
  for (const e of D.events) {
    if (!(e.host in lane)) continue;
    const cx = x(e.t), cy = y(e.host);
    // "conn#7 client1->server 512 bytes": a delivery, drawn from the sender's lane.
    // (Skipped in long runs, where they would only paint the lanes solid.)
    const m = e.kind === 'deliver' && deliveries <= 3000 ? /conn#\d+ (\S+)->(\S+)/.exec(e.detail) : null;
    if (m && m[1] in lane && m[1] !== e.host) {
      s += '<line x1="' + cx + '" y1="' + y(m[1]) + '" x2="' + cx + '" y2="' + cy +
        '" stroke="#6baed6" stroke-width="1" opacity="0.25"/>';
    }
    const rr = (e.kind === 'send' || e.kind === 'deliver' || e.kind === 'timer') ? 2 : 4;
    s += '<circle cx="' + cx + '" cy="' + cy + '" r="' + rr + '" fill="' + (colors[e.kind] || '#000') +
      '" data-i="' + e.i + '"/>';
  }
  if (!r.passed) {
    const fx = x(r.failed_ns);
    s += '<line x1="' + fx + '" x2="' + fx + '" y1="10" y2="' + (hosts.length * laneH + 24) +
      '" stroke="#b00020" stroke-width="2"/><text x="' + (fx > width - 400 ? fx - 4 : fx + 4) +
      '" y="12" fill="#b00020" text-anchor="' + (fx > width - 400 ? 'end' : 'start') + '">' +
      esc('invariant failed: ' + r.invariant) + '</text>';
  }
  // Time axis.
  for (let i = 0; i <= 10; i++) { const t = tmax * i / 10;
    s += '<text x="' + x(t) + '" y="' + (hosts.length * laneH + 40) + '">' + (t / 1e9).toFixed(3) + 's</text>'; }
  svg.setAttribute('width', width + 20);
  svg.setAttribute('height', hosts.length * laneH + 50);
  svg.innerHTML = s;
}
// absl::FormatDuration text ("1h2m3.5s", "656.855525ms", "59us") to nanoseconds.
function parseDuration(text) {
  const units = {h: 3600e9, m: 60e9, s: 1e9, ms: 1e6, us: 1e3, 'µs': 1e3, ns: 1};
  let ns = 0;
  for (const p of text.matchAll(/([0-9.]+)(h|ms|m|s|us|µs|ns)/g)) ns += parseFloat(p[1]) * units[p[2]];
  return ns;
}
function esc(t) { return String(t).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c])); }
svg.addEventListener('mousemove', ev => {
  const i = ev.target.getAttribute && ev.target.getAttribute('data-i');
  if (i === null || i === undefined) { tip.style.display = 'none'; return; }
  const e = D.events[+i];
  tip.textContent = (e.t / 1e9).toFixed(9) + 's ' + e.host + ' ' + e.kind + '\n' + e.detail;
  tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
  tip.style.display = 'block';
});
document.getElementById('zoom').addEventListener('input', draw);
draw();
const rows = D.events.filter(e => e.kind !== 'send' && e.kind !== 'deliver' && e.kind !== 'timer');
const shown = rows.slice(-2000);
document.getElementById('note').textContent = 'Showing the last ' + shown.length + ' of ' + rows.length +
  ' events other than send/deliver/timer (all events are in the lanes above).';
document.getElementById('events').innerHTML = shown.map(e => '<tr class="' + e.kind + '"><td>' +
  (e.t / 1e9).toFixed(6) + 's</td><td>' + esc(e.host) + '</td><td>' + e.kind + '</td><td>' +
  esc(e.detail) + '</td></tr>').join('');
</script></body></html>
)HTML";

}  // namespace

std::string RenderTimeline(const std::vector<TraceEvent>& events, const TimelineHeader& header,
                           bool truncated) {
  nlohmann::json data;
  nlohmann::json r;
  r["title"] = header.title;
  r["passed"] = header.passed;
  r["invariant"] = header.invariant;
  r["detail"] = header.detail;
  r["failed_at"] = absl::FormatDuration(header.failed_at);
  r["failed_ns"] = absl::ToInt64Nanoseconds(header.failed_at);
  r["hash"] = absl::StrCat(absl::Hex(header.trace_hash, absl::kZeroPad16));
  r["trace_events"] = header.trace_events != 0 ? header.trace_events : events.size();
  const absl::Duration simulated = header.simulated != absl::ZeroDuration() || events.empty()
                                       ? header.simulated
                                       : events.back().time;
  r["simulated"] = absl::FormatDuration(simulated);
  r["replay"] = header.replay;
  data["result"] = r;
  data["truncated"] = truncated;
  std::vector<std::string> hosts;
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < events.size(); ++i) {
    const TraceEvent& e = events[i];
    if (e.host != "-" && std::find(hosts.begin(), hosts.end(), e.host) == hosts.end()) {
      hosts.push_back(e.host);
    }
    nlohmann::json j;
    j["i"] = i;
    j["seq"] = e.seq;
    j["t"] = absl::ToInt64Nanoseconds(e.time);
    j["host"] = e.host;
    j["kind"] = TraceKindName(e.kind);
    j["detail"] = e.detail;
    list.push_back(std::move(j));
  }
  data["hosts"] = hosts;
  data["events"] = std::move(list);
  // "</" inside a <script> would end it early.
  std::string json = absl::StrReplaceAll(data.dump(), {{"</", "<\\/"}});
  return absl::StrReplaceAll(kPage, {{"__DATA__", json}});
}

std::string RenderTimeline(const ScenarioResult& result, const std::vector<TraceEvent>& events,
                           bool truncated) {
  TimelineHeader header;
  header.title = absl::StrCat(result.scenario, " seed ", result.seed);
  header.passed = result.passed;
  header.invariant = result.invariant;
  header.detail = result.detail;
  header.failed_at = result.failed_at;
  header.trace_hash = result.trace_hash;
  header.trace_events = result.trace_events;
  header.simulated = result.simulated;
  header.replay = result.ReplayCommand();
  std::string html = RenderTimeline(events, header, truncated);
  return html;
}

std::string RenderTimeline(const Trace& trace, std::string title) {
  TimelineHeader header;
  header.title = std::move(title);
  header.trace_hash = trace.hash();
  header.trace_events = trace.count();
  return RenderTimeline(trace.Recent(), header, trace.count() > trace.capacity());
}

}  // namespace netlayer::sim
