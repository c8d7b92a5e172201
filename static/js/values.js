// How figures are written, and how a slider maps to a parameter's value.

export function format(value, unit = "") {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return "–";
    const abs = Math.abs(value);
    let text;
    if (Number.isInteger(value)) text = value.toLocaleString("en");
    else if (abs >= 1000) text = Math.round(value).toLocaleString("en");
    else if (abs >= 10) text = value.toFixed(1);
    else text = value.toFixed(abs >= 1 ? 2 : 3);
    return unit ? `${text} ${unit}` : text;
  }
  if (Array.isArray(value)) return value.map((v) => format(v)).join(", ");
  return value === undefined || value === null ? "–" : String(value);
}

// A slider's position maps to a parameter value on a linear or a log scale.
export function scaleFor(p) {
  const log = p.min > 0 && p.max / p.min >= 200;
  const steps = 1000;
  return {
    toSlider(v) {
      if (log) return Math.round((Math.log(v / p.min) / Math.log(p.max / p.min)) * steps);
      return Math.round(((v - p.min) / (p.max - p.min)) * steps);
    },
    fromSlider(s) {
      let v = log ? p.min * (p.max / p.min) ** (s / steps) : p.min + ((p.max - p.min) * s) / steps;
      if (p.type === "int") return Math.round(v);
      const step = p.step || (log ? v / 100 : (p.max - p.min) / 200);
      const digits = Math.max(0, -Math.floor(Math.log10(step)));
      v = Number(v.toFixed(Math.min(6, digits)));
      return Math.min(p.max, Math.max(p.min, v));
    },
  };
}

// A figure as the page writes it: words where the engine gives them ("no hot key"
// for -1, "App servers" for "app"), else the number with its unit (or `unit`).
export function shown(spec, value, unit = spec.unit) {
  if (spec.unset && value === -1) return spec.unset;
  if (typeof value === "string") return (spec.words && spec.words[value]) || readable(value);
  return format(value, unit);
}

// Identifiers such as round_robin or central_cache read as words.
export function readable(text) {
  return /^[a-z][a-z0-9]*(_[a-z0-9]+)+$/.test(text) ? text.replaceAll("_", " ") : text;
}
