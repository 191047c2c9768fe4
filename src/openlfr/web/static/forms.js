// Forms whose address depends on a chosen object: data-action="/console/cameras/{camera}/signage"
// takes {camera} from the form's field "camera" when it is sent. (No inline handlers: the
// console's Content-Security-Policy allows scripts from /static only.)
document.addEventListener("submit", (event) => {
  const form = event.target;
  const template = form.dataset ? form.dataset.action : undefined;
  if (!template) return;
  form.action = template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(form.elements[name].value));
});
