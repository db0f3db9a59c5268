// A running training run's page: poll its progress and show it; reload once it has finished,
// so that the metrics, the artifact and the whole log appear as the server renders them.
const POLL_MS = 2000;

const run = document.getElementById("run");
const bar = document.getElementById("run-progress");
const percent = document.getElementById("run-percent");
const stage = document.getElementById("run-stage");
const status = document.getElementById("run-status");
const log = document.getElementById("run-log");

async function poll() {
  let state;
  try {
    const response = await fetch(run.dataset.progressUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`progress answered ${response.status}`);
    state = await response.json();
  } catch (error) {
    stage.textContent = `progress unavailable (${error.message}); retrying`;
    setTimeout(poll, POLL_MS * 2);
    return;
  }
  bar.value = state.progress;
  percent.textContent = `${Math.round(state.progress * 100)} %`;
  stage.textContent = state.stage;
  status.textContent = state.status;
  log.textContent = state.log_tail.join("\n");
  if (state.finished) {
    window.location.reload();
  } else {
    setTimeout(poll, POLL_MS);
  }
}

if (run) setTimeout(poll, POLL_MS);
