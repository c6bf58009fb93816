// chainrule explain.widget: sliders above the explorer page (in a sandboxed iframe). Moving a
// slider sets `values`; the kernel re-runs the model and the real backward pass and sends
// `data`, which is posted into the page (it keeps its step, tab and selection).
function render({ model, el }) {
  const root = document.createElement("div");
  root.style.cssText = "font: 13px system-ui, sans-serif";
  const bar = document.createElement("div");
  bar.style.cssText = "display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;margin:4px 0 6px";
  const err = document.createElement("div");
  err.style.cssText = "color:#c92a2a;margin:2px 0";
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("title", "chainrule backward-pass explorer");
  frame.style.cssText = "width:100%;border:1px solid #ccd;border-radius:4px;height:" + model.get("height") + "px";
  const inputs = {};
  let timer = null;

  function send() {
    const data = model.get("data");
    if (!data || !frame.contentWindow) return;
    frame.contentWindow.postMessage({ chainrule: "data", payload: JSON.parse(data) }, "*");
  }
  function commit() {
    const values = Object.assign({}, model.get("values"));
    for (const name in inputs) values[name] = Number(inputs[name].range.value);
    model.set("values", values);
    model.save_changes();
  }
  for (const spec of model.get("sliders")) {
    const label = document.createElement("label");
    label.style.cssText = "display:flex;gap:6px;align-items:center";
    const name = document.createElement("b");
    name.textContent = spec.name;
    const range = document.createElement("input");
    Object.assign(range, { type: "range", min: spec.min, max: spec.max, step: spec.step, value: spec.value });
    const shown = document.createElement("code");
    shown.textContent = String(spec.value);
    range.addEventListener("input", () => {
      shown.textContent = range.value;
      clearTimeout(timer);
      timer = setTimeout(commit, 120);
    });
    range.addEventListener("change", () => { clearTimeout(timer); commit(); });
    label.append(name, range, shown);
    bar.append(label);
    inputs[spec.name] = { range, shown };
  }
  function onMessage(ev) {
    if (ev.source === frame.contentWindow && ev.data && ev.data.chainrule === "ready") send();
  }
  window.addEventListener("message", onMessage);
  model.on("change:data", send);
  model.on("change:error", () => { err.textContent = model.get("error"); });
  model.on("change:values", () => {
    const values = model.get("values");
    for (const name in inputs) {
      if (name in values) { inputs[name].range.value = values[name]; inputs[name].shown.textContent = String(values[name]); }
    }
  });
  err.textContent = model.get("error");
  frame.srcdoc = model.get("page");
  root.append(bar, err, frame);
  el.append(root);
  return () => window.removeEventListener("message", onMessage);
}
export default { render };
