/* colorlab: a figure shown smaller than it was drawn (every multi-panel figure on a phone) is a
   link to its full-size image, so a tap opens it at a size whose labels can be read (Sphinx does
   the same for images a page scales down). tests/pages_in_browser.py checks it at 400 px. */
(() => {
  const link = img => {
    if (img.closest('a') || !img.naturalWidth) return;
    if (img.getBoundingClientRect().width >= img.naturalWidth - 1) return;  // shown at full size
    const a = document.createElement('a');
    a.href = img.currentSrc || img.src;
    a.className = 'colorlab-full-size';
    a.title = 'Open the figure at full size';
    img.replaceWith(a);
    a.appendChild(img);
  };
  const linkAll = () => document.querySelectorAll('article.bd-article img').forEach(img => {
    if (img.complete) link(img); else img.addEventListener('load', () => link(img), {once: true});
  });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', linkAll);
  else linkAll();
  window.addEventListener('resize', linkAll);  // a phone turned, a window made narrower
})();
