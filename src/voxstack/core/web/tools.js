// Functions the console offers the assistant when "tools" is on: each runs in the page when the reply
// calls it (a tool_call event), and its result goes back (tool_result) for the reply to go on.

export const TOOLS = {
  get_local_time: {
    spec: {
      name: "get_local_time",
      description: "The user's local date, time and time zone.",
      parameters: { type: "object", properties: {} },
    },
    run: () => {
      const now = new Date();
      return {
        time: now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
        date: now.toLocaleDateString(),
        time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      };
    },
  },
};

// The result of a call, as the text sent back: what the tool returned, or what went wrong.
export function runTool(name, argumentsText) {
  const tool = TOOLS[name];
  if (!tool) return JSON.stringify({ error: `no tool named ${name}` });
  try {
    return JSON.stringify(tool.run(JSON.parse(argumentsText || "{}")));
  } catch (err) {
    return JSON.stringify({ error: String(err.message || err) });
  }
}
