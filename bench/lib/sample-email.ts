/**
 * The email every email benchmark sends: a typical transactional message (text and html
 * alternatives, a display name, a tag). The raw nodemailer baseline sends the same content with
 * the same id header, so the delivery ratio compares the same work.
 */
export function sampleEmail(i: number) {
  return {
    from: 'Bench <bench@example.com>',
    to: [`user${i}@example.com`],
    subject: `Your order #${i} has shipped`,
    text: `Hello,\n\nyour order #${i} is on its way.\n`,
    html: `<p>Hello,</p><p>your order <b>#${i}</b> is on its way.</p>`,
    tags: ['bench'],
  };
}
