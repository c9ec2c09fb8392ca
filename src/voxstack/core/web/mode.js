// Which mode the core runs in (its X-Voxstack-Mode header): dev turns the page orange, prefixes
// the title with [DEV] and swaps the favicon, so a development stack is never taken for production.

export async function showMode(page) {
  let mode = "unknown";
  try {
    mode = (await fetch("/livez")).headers.get("x-voxstack-mode") || "unknown";
  } catch {
    return mode;
  }
  const label = document.getElementById("mode");
  if (label) label.textContent = mode.toUpperCase();
  const dev = mode === "dev";
  document.body.classList.toggle("dev", dev);
  document.title = `${dev ? "[DEV] " : ""}voxstack ${page}`;
  const icon = document.getElementById("favicon");
  if (icon) icon.href = `/console/assets/favicon${dev ? "-dev" : ""}.svg`;
  const link = document.getElementById("dev-link");
  if (link) link.hidden = !dev;
  return mode;
}
