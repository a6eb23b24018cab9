// Tessera console: asks before destructive forms; refreshes the cluster
// and jobs pages every 10 seconds while the tab is visible.
document.addEventListener("submit", (e) => {
  const message = e.target.dataset.confirm;
  if (message && !window.confirm(message)) e.preventDefault();
});
if (["/console/cluster", "/console/jobs"].includes(location.pathname)) {
  setInterval(() => { if (!document.hidden) location.reload(); }, 10000);
}
