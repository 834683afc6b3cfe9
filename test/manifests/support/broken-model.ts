/** Helpers for the broken-model suites: the real model with one change, and the error synth raises. */
import { createModel, ModelError, type DeploymentModel } from '../../../charts/model';
import { renderAll } from '../../../charts/synth';

export type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };

/** The real model with one change applied. */
export function modelWith(change: (model: Mutable<DeploymentModel>) => void): DeploymentModel {
  const model = structuredClone(createModel()) as Mutable<DeploymentModel>;
  change(model);
  return model;
}

/** Synthesizes everything (what `npm run synth` does before writing) and returns the error. */
export function synthError(model: DeploymentModel): ModelError {
  try {
    renderAll(model);
  } catch (err) {
    expect(err).toBeInstanceOf(ModelError);
    return err as ModelError;
  }
  throw new Error('synth accepted a broken model');
}
