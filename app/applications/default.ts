/**
 * The `default` application: where everything created before applications existed lives
 * (migration 20261130160000_applications_expand creates it with this id), and where
 * `easeemail api-keys create` puts a key when no --application is given.
 */
export const DEFAULT_APPLICATION_ID = '00000000-0000-4000-8000-000000000001';
export const DEFAULT_APPLICATION_NAME = 'default';
