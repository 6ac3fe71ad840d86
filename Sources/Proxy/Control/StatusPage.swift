/// `GET /status`: one HTML page with no external asset (it works offline) that subscribes to
/// `GET /status/events`, P-8's own SSE stream of ``Publish/PublishHub/statusSnapshot(now:channelLimit:)``, and
/// draws held connections, publish and delivery rates over the last five minutes, the busiest channels, the
/// holds furthest behind and the store. The query string (a `token` for a protected API) is passed on to the
/// stream, since `EventSource` cannot send an `Authorization` header.
enum StatusPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>P-8 status</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #f6f7f9; }
        h1 { font-size: 20px; margin: 0 0 16px; }
        h2 { font-size: 15px; margin: 0 0 8px; }
        .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px; }
        .card { background: #fff; border: 1px solid #d8dce3; border-radius: 8px; padding: 16px; }
        .big { font-size: 28px; font-weight: 600; }
        .label { color: #5b6475; font-size: 12px; }
        .row { display: flex; gap: 24px; }
        table { border-collapse: collapse; width: 100%; }
        td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eceef2; font-variant-numeric: tabular-nums; }
        svg { width: 100%; height: 80px; background: #fbfcfd; border: 1px solid #eceef2; }
        #state { font-size: 12px; margin-left: 8px; }
        .live { color: #1a7f37; } .down { color: #c62828; }
        </style>
        </head>
        <body>
        <h1>P-8 status <span id="state" class="down">connecting…</span></h1>
        <div class="grid">
          <div class="card"><h2>Held connections</h2>
            <div class="row">
              <div><div class="big" id="held-response">–</div><div class="label">long-polls</div></div>
              <div><div class="big" id="held-stream">–</div><div class="label">streams</div></div>
              <div><div class="big" id="held-ws">–</div><div class="label">WebSockets</div></div>
            </div></div>
          <div class="card"><h2>Publishes per second <span class="label" id="rate-received"></span></h2>
            <svg id="chart-received" viewBox="0 0 300 80" preserveAspectRatio="none"></svg></div>
          <div class="card"><h2>Deliveries per second <span class="label" id="rate-deliveries"></span></h2>
            <svg id="chart-deliveries" viewBox="0 0 300 80" preserveAspectRatio="none"></svg></div>
          <div class="card"><h2>Store</h2>
            <div class="row">
              <div><div class="big" id="store-items">–</div><div class="label">items</div></div>
              <div><div class="big" id="store-bytes">–</div><div class="label">bytes</div></div>
              <div><div class="big" id="store-channels">–</div><div class="label">channels</div></div>
            </div>
            <div class="label" id="retention"></div></div>
          <div class="card"><h2>Busiest channels</h2>
            <table><thead><tr><th>channel</th><th>subscribers</th><th>newest id</th></tr></thead>
            <tbody id="channels"></tbody></table></div>
          <div class="card"><h2>Holds furthest behind</h2>
            <table><thead><tr><th>hold</th><th>mode</th><th>channel</th><th>behind</th></tr></thead>
            <tbody id="behind"></tbody></table></div>
        </div>
        <script>
        "use strict";
        const samples = [];
        const windowSeconds = 300;
        function text(id, value) { document.getElementById(id).textContent = value; }
        function rows(id, list, cells) {
          const body = document.getElementById(id);
          body.replaceChildren(...list.map(entry => {
            const tr = document.createElement("tr");
            for (const value of cells(entry)) {
              const td = document.createElement("td");
              td.textContent = value;
              tr.appendChild(td);
            }
            return tr;
          }));
        }
        function chart(key) {
          const points = [];
          for (let i = 1; i < samples.length; i++) {
            const dt = samples[i].time - samples[i - 1].time;
            if (dt > 0) points.push({ time: samples[i].time, rate: Math.max(0, samples[i][key] - samples[i - 1][key]) / dt });
          }
          const svg = document.getElementById("chart-" + key);
          const now = samples.length ? samples[samples.length - 1].time : 0;
          const top = Math.max(1, ...points.map(p => p.rate));
          const coords = points.map(p => ((300 - (now - p.time) * 300 / windowSeconds).toFixed(1)) + "," + (78 - p.rate * 74 / top).toFixed(1));
          svg.innerHTML = "";
          const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
          line.setAttribute("points", coords.join(" "));
          line.setAttribute("fill", "none");
          line.setAttribute("stroke", key === "received" ? "#2f6fde" : "#1a7f37");
          line.setAttribute("stroke-width", "2");
          svg.appendChild(line);
          const last = points.length ? points[points.length - 1].rate : 0;
          text("rate-" + key, "now " + last.toFixed(1) + "/s, peak " + top.toFixed(1) + "/s");
        }
        function show(snapshot) {
          text("held-response", snapshot.held.response);
          text("held-stream", snapshot.held.stream);
          text("held-ws", snapshot.held.ws);
          text("store-items", snapshot.store.items);
          text("store-bytes", snapshot.store.bytes);
          text("store-channels", snapshot.store.channels);
          const r = snapshot.retention;
          text("retention", "retention: " + r.maxItems + " items, " + r.maxAgeSeconds + " s, " + r.maxBytes + " bytes per channel");
          rows("channels", snapshot.channels, c => [c.name, c.subscribers, c.newest === null ? "–" : c.newest]);
          rows("behind", snapshot.behind, b => [b.hold.slice(0, 8), b.mode, b.channel, b.behind]);
          samples.push({ time: snapshot.time, received: snapshot.counters.items_received, deliveries: snapshot.counters.deliveries });
          while (samples.length && samples[0].time < snapshot.time - windowSeconds) samples.shift();
          chart("received");
          chart("deliveries");
        }
        const events = new EventSource("/status/events" + location.search);
        const state = document.getElementById("state");
        events.onopen = () => { state.textContent = "live"; state.className = "live"; };
        events.onerror = () => { state.textContent = "reconnecting…"; state.className = "down"; };
        events.onmessage = message => show(JSON.parse(message.data));
        </script>
        </body>
        </html>
        """#
}
