// Small enhancements; every page works without them.
// A "back to the results" link goes back to the very list the visitor came from.
document.querySelectorAll("a[data-back]").forEach((link) => {
  try {
    const from = new URL(document.referrer);
    const lists = link.dataset.back.split(",");
    if (from.origin === location.origin && lists.some((path) => from.pathname.startsWith(path))) {
      link.href = from.pathname + from.search;
    }
  } catch (error) {
    // no referrer, or not one of ours: the link keeps its own address
  }
});

// A page shown in answer to a form (a refused "add to cart", say) keeps its own address in the bar,
// so reloading it does not send the form again.
const canonical = document.querySelector('link[rel="canonical"]');
if (canonical) {
  const own = new URL(canonical.href, location.href);
  if (own.pathname !== location.pathname) {
    history.replaceState(null, "", own.pathname);
  }
}
