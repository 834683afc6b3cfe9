import { compileTemplate, escapeHtml, renderTemplate, TemplateDataError, TemplateSyntaxError } from './engine';

describe('compileTemplate', () => {
  test('splits literals and variables and lists the variables once, in order', () => {
    const t = compileTemplate('Hi {{ user.name }}, {{{ raw }}} and {{user.name}} {{ items.0 }}');
    expect(t.variables).toEqual(['user.name', 'raw', 'items.0']);
    expect(t.parts).toEqual(['Hi ', { path: ['user', 'name'], raw: false }, ', ', { path: ['raw'], raw: true }, ' and ', { path: ['user', 'name'], raw: false }, ' ', { path: ['items', '0'], raw: false }]);
  });

  test('text without tags is one literal', () => {
    expect(compileTemplate('no tags { here }').parts).toEqual(['no tags { here }']);
    expect(compileTemplate('').parts).toEqual([]);
  });

  test.each([
    ['Hello {{ name', /never closed/],
    ['Hello {{{ name }}', /never closed/],
    ['{{ }}', /not a variable/],
    ['{{ na me }}', /not a variable/],
    ['{{ 1abc }}', /not a variable/],
    ['{{ a..b }}', /not a variable/],
    ['{{ constructor.prototype }} ok {{ x; y }}', /not a variable/],
  ])('refuses %j', (source, message) => {
    expect(() => compileTemplate(source)).toThrow(TemplateSyntaxError);
    expect(() => compileTemplate(source)).toThrow(message);
  });

  test('reports the offset of the problem', () => {
    try {
      compileTemplate('abc {{ x');
      throw new Error('compiled');
    } catch (err) {
      expect((err as TemplateSyntaxError).offset).toBe(4);
    }
  });
});

describe('renderTemplate', () => {
  const t = compileTemplate('<p>{{ name }}</p>{{{ html }}} #{{ n }} {{ ok }} {{ a.b.c }}');
  const data = { name: `<script>alert("x") & 'y'</script>`, html: '<b>bold</b>', n: 3, ok: false, a: { b: { c: 'deep' } } };

  test('escapes in HTML, except triple braces', () => {
    expect(renderTemplate(t, data, 'html')).toBe('<p>&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;</p><b>bold</b> #3 false deep');
  });

  test('inserts values as they are in text', () => {
    expect(renderTemplate(t, data, 'text')).toBe(`<p><script>alert("x") & 'y'</script></p><b>bold</b> #3 false deep`);
  });

  test('lists every missing or unusable variable', () => {
    try {
      renderTemplate(t, { name: null, html: { x: 1 }, n: [1] }, 'html');
      throw new Error('rendered');
    } catch (err) {
      expect(err).toBeInstanceOf(TemplateDataError);
      expect((err as TemplateDataError).problems).toEqual([
        { variable: 'name', message: 'missing from the template data' },
        { variable: 'html', message: 'is an object; give a string, number or boolean' },
        { variable: 'n', message: 'is an array; give a string, number or boolean' },
        { variable: 'ok', message: 'missing from the template data' },
        { variable: 'a.b.c', message: 'missing from the template data' },
      ]);
    }
  });

  test('does not reach inherited properties', () => {
    expect(() => renderTemplate(compileTemplate('{{ toString }}{{ a.constructor }}'), { a: {} }, 'text')).toThrow(TemplateDataError);
  });

  test('escapeHtml covers the five HTML-special characters', () => {
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
  });
});
