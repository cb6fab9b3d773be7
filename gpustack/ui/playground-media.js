// Playground tabs for speech and image models: text to speech, speech to text, image generation.
import { ApiError, attempt, errorMessage, esc } from "/ui/lib.js";

export const MEDIA_TABS = [
  { tab: "speech", title: "Text to speech", category: "text_to_speech", html: speechHtml, wire: wireSpeech },
  { tab: "transcribe", title: "Speech to text", category: "speech_to_text", html: transcribeHtml, wire: wireTranscribe },
  { tab: "image", title: "Image", category: "image", html: imageHtml, wire: wireImage },
];

async function send(path, init, signal) {
  const res = await fetch(path, { method: "POST", credentials: "same-origin", signal, ...init });
  if (!res.ok) throw new ApiError(res.status, `${path}: ${await errorMessage(res)}`);
  return res;
}
const json = (body) => ({ headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

function speechHtml(options) {
  return `<form id="speech-form" class="stack"><label>Model <select name="model">${options}</select></label>
    <label>Text <textarea name="input">Hello from GPUStack.</textarea></label>
    <label>Voice <input name="voice" value="alloy"></label>
    <div class="row"><button type="submit">Speak</button></div><div id="speech-out"></div></form>`;
}

function wireSpeech(form, signal) {
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const body = { model: form.model.value, input: form.input.value, voice: form.voice.value, response_format: "mp3" };
      const blob = await (await send("/v1/audio/speech", json(body), signal)).blob();
      const out = form.querySelector("#speech-out");
      out.innerHTML = `<audio controls></audio>`;
      out.querySelector("audio").src = URL.createObjectURL(blob);
    }, form.querySelector("button"));
  };
}

function transcribeHtml(options) {
  return `<form id="transcribe-form" class="stack"><label>Model <select name="model">${options}</select></label>
    <label>Audio file <input name="file" type="file" accept="audio/*" required></label>
    <div class="row"><button type="submit">Transcribe</button></div><pre id="transcribe-out" hidden></pre></form>`;
}

function wireTranscribe(form, signal) {
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const data = new FormData();
      data.append("model", form.model.value);
      data.append("file", form.file.files[0]);
      const answer = await (await send("/v1/audio/transcriptions", { body: data }, signal)).json();
      const out = form.querySelector("#transcribe-out");
      out.hidden = false;
      out.textContent = answer.text ?? JSON.stringify(answer);
    }, form.querySelector("button"));
  };
}

function imageHtml(options) {
  return `<form id="image-form" class="stack"><label>Model <select name="model">${options}</select></label>
    <label>Prompt <input name="prompt" value="a lighthouse at dawn, watercolor"></label>
    <label>Size <select name="size"><option>512x512</option><option>1024x1024</option></select></label>
    <div class="row"><button type="submit">Generate</button></div><div id="image-out"></div></form>`;
}

function wireImage(form, signal) {
  form.onsubmit = (e) => {
    e.preventDefault();
    attempt(async () => {
      const body = { model: form.model.value, prompt: form.prompt.value, size: form.size.value, n: 1, response_format: "b64_json" };
      const answer = await (await send("/v1/images/generations", json(body), signal)).json();
      form.querySelector("#image-out").innerHTML = (answer.data || []).map((d) =>
        `<img alt="${esc(form.prompt.value)}" style="max-width:512px" src="${d.b64_json ? `data:image/png;base64,${esc(d.b64_json)}` : esc(d.url)}">`).join("");
    }, form.querySelector("button"));
  };
}
