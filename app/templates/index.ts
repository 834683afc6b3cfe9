/**
 * The templates domain's public face: what other domains may use (emails name a template, and
 * render it at accept time). Everything else in app/templates/ is its own business; the api root
 * wires the service and routes directly.
 */
export { templateData, templateName } from './schemas';
export { renderEmailTemplate, type CompiledEmailTemplate, type RenderedEmail, type TemplateRef, type TemplateService } from './service';
