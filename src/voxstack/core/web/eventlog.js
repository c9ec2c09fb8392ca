// Every WebSocket event in and out (outgoing audio frames only when asked), newest first, filterable.

const KEEP = 500;

export class EventLog {
  constructor(list, filter, showAudio, clear) {
    this.list = list;
    this.filter = filter;
    this.showAudio = showAudio;
    this.entries = [];
    this.t0 = performance.now();
    filter.addEventListener("input", () => this.render());
    showAudio.addEventListener("change", () => this.render());
    clear.addEventListener("click", () => {
      this.entries = [];
      this.render();
    });
  }

  add(direction, type, body) {
    const entry = { t: (performance.now() - this.t0) / 1000, direction, type, text: body };
    this.entries.push(entry);
    if (this.entries.length > KEEP) this.entries.shift();
    if (this.visible(entry)) this.list.prepend(this.item(entry));
    while (this.list.children.length > KEEP) this.list.lastChild.remove();
  }

  visible(entry) {
    if (entry.type === "frame" && !this.showAudio.checked) return false;
    const needle = this.filter.value.trim().toLowerCase();
    return !needle || entry.type.includes(needle) || entry.text.toLowerCase().includes(needle);
  }

  item(entry) {
    const li = document.createElement("li");
    li.className = entry.direction === "out" ? "out" : entry.type === "error" ? "error" : "";
    li.dataset.type = entry.type;
    li.textContent = `${entry.t.toFixed(3)} ${entry.direction === "out" ? "→" : "←"} ${entry.type} ${entry.text}`;
    li.title = li.textContent;
    return li;
  }

  render() {
    this.list.replaceChildren(...this.entries.filter((e) => this.visible(e)).reverse().map((e) => this.item(e)));
  }
}
